# Runs the tour and checks its output: the key line of every section must be there, in
# order. Lines whose numbers depend on timing (costs, how many updates were lost, which
# calls were cancelled) are only checked for presence, never for their numbers.
#
#   cmake -DTOUR=<path to tour> -DMODE=all -P tour_check.cmake    every section
#   cmake -DTOUR=<path to tour> -DMODE=2 -P tour_check.cmake      `tour 2`: section 2 only
#   cmake -DTOUR=<path to tour> -DMODE=usage -P tour_check.cmake  bad arguments are refused
#
# -DRUN=<emulator> runs the tour through it (a cross-built tour under QEMU).
cmake_minimum_required(VERSION 3.25)

if(NOT TOUR OR NOT MODE)
  message(FATAL_ERROR "usage: cmake -DTOUR=<tour> -DMODE=all|<section>|usage -P tour_check.cmake")
endif()

# `tour 0`, `tour 15`, `tour 01`, `tour x` and `tour 1 2` print the usage and exit
# non-zero.
if(MODE STREQUAL "usage")
  foreach(args "0" "15" "01" "x" "1;2")
    execute_process(COMMAND ${RUN} "${TOUR}" ${args} OUTPUT_VARIABLE out ERROR_VARIABLE err
                    RESULT_VARIABLE rc TIMEOUT 30)
    if(rc EQUAL 0 OR NOT err MATCHES "usage: tour")
      message(FATAL_ERROR "tour ${args}: want the usage and a non-zero exit, got exit ${rc}:\n${out}${err}")
    endif()
  endforeach()
  return()
endif()

# Each check is "<section>:<regular expression>". Square brackets are written as `.`
# where they would be unbalanced, which a CMake list does not survive.
set(checks
  "1:== 1\\. goroutines die when main returns =="
  "1:goro: main returned with 3 goroutines still running \\(abandoned\\)"
  "1:\\(child exited with status 0\\)"
  "1:main: all 3 workers finished"
  "1:\\(child exited with status 0\\)"

  "2:== 2\\. the loop-variable capture pitfall =="
  "2:goro::go\\(f, i\\) copies i: +goroutines saw 0 1 2"
  "2:capturing .i. copies it: +goroutines saw 0 1 2"
  "2:capturing .&. refers to i: +goroutines saw 3 3 3"

  "3:== 3\\. sleep is not synchronisation =="
  "3:no wait at all: +[0-3] of 3 finished"
  "3:goro::sleep\\(100ms\\) first: +[0-3] of 3 finished"
  "3:on a slow day: +[0-3] of 3 finished"
  "3:wait_group\\.wait\\(\\): +3 of 3 finished"

  "4:== 4\\. a shared counter, four ways =="
  "4:unsynchronised \\(\\+ a yield\\): +counter = +[0-9]+ \\(want 40000\\) +[0-9.]+ ns per increment"
  "4:std::atomic fetch_add: +counter = +40000 \\(want 40000\\) +[0-9.]+ ns per increment"
  "4:goro::mutex: +counter = +40000 \\(want 40000\\) +[0-9.]+ ns per increment"
  "4:a channel to one owner: +counter = +40000 \\(want 40000\\) +[0-9.]+ ns per increment"
  "4:examples/racy_counter\\.cpp"

  "5:== 5\\. a goroutine leak =="
  "5:goroutine profile: total"
  "5:\n  3 @ 0x[^\n]*\n  # wait: chan receive"
  "5:3 goroutines in .chan receive."
  "5:found 3 leaked goroutines"
  "5:goroutine [0-9]+ .chan receive"
  "5:check_no_leaks\\(\\): ok"
  "5:check_no_leaks\\(\\): ok"

  "6:== 6\\. a worker pool stopped by a context =="
  "6:main: got 10 results. cancelling the context"
  "6:worker [1-3]: stopped \\(context canceled\\)"
  "6:worker [1-3]: stopped \\(context canceled\\)"
  "6:worker [1-3]: stopped \\(context canceled\\)"
  "6:check_no_leaks\\(\\): ok, the pool left nothing behind"

  "7:== 7\\. bounded fan-out: errgroup and semaphore =="
  "7:errgroup, set_limit\\(4\\): wait\\(\\) returned \"call 5: server said 500\""
  "7:at most [1-4] units in flight"
  "7:calls that saw the context cancelled \\(\"context canceled\"\\):"
  "7:semaphore\\(4\\), weights 1 and 2: cause\\(ctx\\) is \"call 5: server said 500\""
  "7:at most [1-4] units in flight"
  "7:calls that saw the context cancelled \\(\"context canceled\"\\):"

  "8:== 8\\. the deadlock detector =="
  "8:fatal error: all goroutines are asleep - deadlock!"
  "8:goroutine [0-9]+ .sync\\.Mutex\\.Lock"
  "8:goroutine [0-9]+ .sync\\.Mutex\\.Lock"
  "8:\\(child exited with status 2\\)"

  "9:== 9\\. closed channels =="
  "9:send on a closed channel throws goro::panic_error: \"send on closed channel\""
  "9:receives after close: 1 2 nullopt"
  "9:consumer got 3 words and still waits after 100 ms"
  "9:goroutine [0-9]+ .chan receive.:\n[^\n]*count_words"
  "9:consumer got 3 words and returned"
  "9:4 producers x 5 values: received 20, then the range-for ended"
  "9:check_no_leaks\\(\\): ok"

  "10:== 10\\. the forgotten done\\(\\) =="
  "10:job 2 failed: job 2: bad input \\(returns early, without done\\(\\)\\)"
  "10:wg\\.wait\\(\\) has not returned after 100 ms"
  "10:goroutine [0-9]+ .sync\\.WaitGroup\\.Wait"
  "10:wg\\.wait\\(\\) returned"
  "10:job 2 failed and returns early. the guard still calls done\\(\\)|job 3 threw \"job 3: parse error\". the guard still calls done\\(\\)"
  "10:job 2 failed and returns early. the guard still calls done\\(\\)|job 3 threw \"job 3: parse error\". the guard still calls done\\(\\)"
  "10:wg\\.wait\\(\\) returned"
  "10:check_no_leaks\\(\\): ok"

  "11:== 11\\. lock granularity =="
  "11:mutex around the whole request: +[0-9]+ requests/s"
  "11:mutex around the map update: +[0-9]+ requests/s +\\([0-9.]+x\\)"
  "11:goro::mutex: +[0-9]+ reads/s"
  "11:goro::rw_mutex, shared lock: +[0-9]+ reads/s +\\([0-9.]+x\\)"

  "12:== 12\\. shared maps =="
  "12:fatal error: concurrent map\nwrites"
  "12:examples/racy_map\\.cpp"
  "12:a goro::mutex around every access: +8 words, 20000 counted \\(want 20000\\)"
  "12:one owner goroutine, fed a channel: 8 words, 20000 counted \\(want 20000\\)"

  "13:== 13\\. unbounded fan-out =="
  "13:errgroup, set_limit\\(1000\\): +(100000|5000) records in +[0-9]+ ms. peak +[0-9]?[0-9]?[0-9]?[0-9] goroutines, memory \\+[0-9]+ MB"
  "13:one goroutine per record: +(100000|5000) records in +[0-9]+ ms. peak +[0-9]+ goroutines, memory \\+[0-9]+ MB"

  "14:== 14\\. finding them first: schedule exploration and virtual time =="
  "14:explore: failed in run [0-9]+ of up to 1000. seed [0-9]+ replays it"
  "14:leak: the body returned, and goroutines it started are blocked for good"
  "14:goroutine [0-9]+ .chan send \\(durable\\)"
  "14:the seed alone, again: fails the same way"
  "14:with a buffer of one: no failure in 1000 runs"
  "14:synctest: a one-hour timeout fired after 60 min of fake time, \"context deadline exceeded\""
)

if(MODE STREQUAL "all")
  set(args "")
elseif(MODE MATCHES "^([1-9]|1[0-4])$")
  set(args "${MODE}")
else()
  message(FATAL_ERROR "MODE must be all, a section number or usage (got '${MODE}')")
endif()

execute_process(COMMAND ${RUN} "${TOUR}" ${args} OUTPUT_VARIABLE out ERROR_VARIABLE err
                RESULT_VARIABLE rc TIMEOUT 100)
string(STRIP "tour ${args}" command_line)
# On failure, show everything the tour wrote (verbatim), then say what is wrong.
function(fail why)
  message("exit status: ${rc}\n--- stdout ---\n${out}--- stderr ---\n${err}--- end ---")
  message(FATAL_ERROR "${why}")
endfunction()
if(NOT rc EQUAL 0)
  fail("${command_line} failed")
endif()
# Sanitizer reports, the tour's own or a child's (children's output is on stdout).
if("${out}${err}" MATCHES "(WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer)")
  fail("${command_line}: a sanitizer reported a problem")
endif()

# Look for each check after the place where the one before it matched.
set(rest "${out}")
foreach(check IN LISTS checks)
  string(FIND "${check}" ":" colon)
  string(SUBSTRING "${check}" 0 ${colon} section)
  math(EXPR from "${colon} + 1")
  string(SUBSTRING "${check}" ${from} -1 pattern)
  if(NOT MODE STREQUAL "all" AND NOT section STREQUAL MODE)
    continue()
  endif()
  string(REGEX MATCH "${pattern}" found "${rest}")
  if(found STREQUAL "")
    fail("${command_line}: section ${section} lacks (in this order) a line matching\n  ${pattern}")
  endif()
  string(FIND "${rest}" "${found}" at)
  string(LENGTH "${found}" length)
  math(EXPR after "${at} + ${length}")
  string(SUBSTRING "${rest}" ${after} -1 rest)
endforeach()

# `tour N` runs section N and no other.
if(NOT MODE STREQUAL "all")
  string(REGEX MATCHALL "\n== [0-9]+\\. " headings "${out}")
  list(LENGTH headings count)
  if(NOT count EQUAL 1)
    fail("${command_line}: want only section ${MODE}, got ${count} sections")
  endif()
endif()
