// profile.cpp — the goroutine profile in pprof's format (goro::debug::
// write_goroutine_profile): profile.proto, compiled from the copy Debian ships with
// google/pprof, encoded with libprotobuf and gzip-compressed with zlib, as Go's
// runtime/pprof writes it for /debug/pprof/goroutine.
//
// Samples group goroutines by stack, state label and name label. Stacks are the frames
// a dump shows; a location is one return address with all the frames inlined there
// (innermost first, as profile.proto orders a location's lines), and its address is
// the call instruction's (the return address minus one), as pprof expects.
#include <chrono>
#include <cstdio>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "debug/dump.hpp"
#include "goro/debug.hpp"
#include "runtime/sys.hpp"

#if defined(GORO_HAVE_PPROF)
#include <zlib.h>

#include "profile.pb.h"
#endif

namespace goro::detail {
namespace {

#if defined(GORO_HAVE_PPROF)

namespace pp = perftools::profiles;

// An executable mapping of /proc/self/maps.
struct text_mapping {
  std::uint64_t start, limit, offset;
  std::string file;
  std::uint64_t id = 0;  // 0 until a location uses it
  bool has_files = false;
};

std::vector<text_mapping> read_text_mappings() {
  std::vector<text_mapping> out;
  std::FILE* f = std::fopen("/proc/self/maps", "r");
  if (f == nullptr) return out;
  char line[4096];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long start, limit, offset;
    char perms[8] = {};
    int path_at = 0;
    if (std::sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &start, &limit, perms, &offset,
                    &path_at) < 4) {
      continue;
    }
    if (perms[2] != 'x') continue;
    std::string file = path_at > 0 ? std::string(line + path_at) : std::string();
    while (!file.empty() && (file.back() == '\n' || file.back() == ' ')) file.pop_back();
    // A file replaced since it was mapped (a rebuilt binary): its name, as Go gives it.
    constexpr std::string_view deleted = " (deleted)";
    if (file.size() > deleted.size() && file.ends_with(deleted)) {
      file.resize(file.size() - deleted.size());
    }
    out.push_back({start, limit, offset, file});
  }
  std::fclose(f);
  return out;
}

class profile_builder {
 public:
  profile_builder() : maps_(read_text_mappings()) {
    str("");  // string_table[0] is always ""
    auto* st = prof_.add_sample_type();
    st->set_type(str("goroutine"));
    st->set_unit(str("count"));
    prof_.mutable_period_type()->set_type(str("goroutine"));
    prof_.mutable_period_type()->set_unit(str("count"));
    prof_.set_period(1);
    prof_.set_time_nanos(std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count());
  }

  void add(const std::vector<shown_frame>& frames, bool running_elsewhere,
           const std::string& state, const std::string& name, std::int64_t count) {
    pp::Sample* s = prof_.add_sample();
    if (running_elsewhere) {
      s->add_location_id(synthetic_location("goro::debug::(running on another thread)"));
    }
    for (std::size_t i = 0; i < frames.size();) {
      std::size_t j = i;
      while (j < frames.size() && frames[j].pc == frames[i].pc) ++j;
      s->add_location_id(location(frames, i, j));
      i = j;
    }
    s->add_value(count);
    label(s, "state", state);
    if (!name.empty()) label(s, "name", name);
  }

  std::string finish() {
    for (auto& m : maps_) {
      if (m.id == 0) continue;
      pp::Mapping* pm = prof_.add_mapping();
      pm->set_id(m.id);
      pm->set_memory_start(m.start);
      pm->set_memory_limit(m.limit);
      pm->set_file_offset(m.offset);
      pm->set_filename(str(m.file));
      pm->set_has_functions(true);
      pm->set_has_filenames(m.has_files);
      pm->set_has_line_numbers(m.has_files);
      pm->set_has_inline_frames(m.has_files);
    }
    std::string out;
    prof_.SerializeToString(&out);
    return out;
  }

 private:
  std::int64_t str(const std::string& raw) {
    // proto3 string fields must hold UTF-8: a strict parser refuses the whole profile.
    std::string s = valid_utf8(raw);
    auto [it, fresh] = strings_.try_emplace(s, static_cast<std::int64_t>(strings_.size()));
    if (fresh) prof_.add_string_table(s);
    return it->second;
  }

  std::uint64_t function(const std::string& fn, const std::string& file) {
    auto [it, fresh] = functions_.try_emplace({fn, file}, functions_.size() + 1);
    if (fresh) {
      pp::Function* f = prof_.add_function();
      f->set_id(it->second);
      f->set_name(str(fn));
      f->set_system_name(str(fn));
      f->set_filename(str(file));
    }
    return it->second;
  }

  text_mapping* mapping_of(std::uint64_t addr) {
    for (auto& m : maps_) {
      if (addr >= m.start && addr < m.limit) return &m;
    }
    return nullptr;
  }

  // frames[i, j) share one pc: one location, keyed by the pc and the frames kept of it
  // (a dump may cut some of a pc's inlined frames at a stack's ends).
  std::uint64_t location(const std::vector<shown_frame>& frames, std::size_t i, std::size_t j) {
    std::string key = std::to_string(frames[i].pc);
    for (std::size_t k = i; k < j; ++k) key += '\0' + frames[k].function;
    auto [it, fresh] = locations_.try_emplace(key, locations_.size() + 1);
    if (!fresh) return it->second;
    pp::Location* loc = prof_.add_location();
    loc->set_id(it->second);
    std::uint64_t addr = frames[i].pc - 1;  // the call instruction
    loc->set_address(addr);
    text_mapping* m = mapping_of(addr);
    if (m != nullptr) {
      if (m->id == 0) m->id = ++mapping_ids_;
      loc->set_mapping_id(m->id);
    }
    for (std::size_t k = i; k < j; ++k) {
      pp::Line* l = loc->add_line();
      l->set_function_id(function(frames[k].function, frames[k].file));
      l->set_line(frames[k].line);
      if (m != nullptr && !frames[k].file.empty()) m->has_files = true;
    }
    return it->second;
  }

  std::uint64_t synthetic_location(const std::string& fn) {
    auto [it, fresh] = locations_.try_emplace(std::string("\0", 1) + fn, locations_.size() + 1);
    if (fresh) {
      pp::Location* loc = prof_.add_location();
      loc->set_id(it->second);
      loc->add_line()->set_function_id(function(fn, ""));
    }
    return it->second;
  }

  void label(pp::Sample* s, const std::string& key, const std::string& value) {
    pp::Label* l = s->add_label();
    l->set_key(str(key));
    l->set_str(str(value));
  }

  pp::Profile prof_;
  std::vector<text_mapping> maps_;
  std::uint64_t mapping_ids_ = 0;
  std::unordered_map<std::string, std::int64_t> strings_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> functions_;
  std::unordered_map<std::string, std::uint64_t> locations_;
};

// gzip (RFC 1952) of `raw`, as pprof profiles are stored.
bool gzip(const std::string& raw, std::string& out) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return false;
  }
  out.resize(deflateBound(&zs, static_cast<uLong>(raw.size())));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END;
}

#endif  // GORO_HAVE_PPROF

}  // namespace
}  // namespace goro::detail

namespace goro::debug {

error write_goroutine_profile(std::ostream& os) {
  detail::check_not_forked("goro::debug::write_goroutine_profile");
#if !defined(GORO_HAVE_PPROF)
  (void)os;
  return make_error(
      "debug::write_goroutine_profile: goro was built without pprof profiles (they need "
      "protobuf and zlib: apt-get install libprotobuf-dev protobuf-compiler zlib1g-dev "
      "golang-github-google-pprof-dev, then configure with -DGORO_PPROF=ON)");
#else
  // On the caller: its own frames are walked here.
  auto all = detail::collect_goroutines(true, /*sample_running=*/true);
  std::string raw;
  detail::on_big_stack([&] {
    // Goroutines with the same state, name and stack make one sample.
    using key = std::tuple<std::string, std::string, bool, std::vector<std::uintptr_t>>;
    std::map<key, std::int64_t> groups;
    for (const auto& v : all) {
      bool elsewhere = v.state == detail::g_state::running && !v.is_caller && !v.sampled;
      ++groups[key(detail::group_status(v, false), v.name, elsewhere, v.pcs)];
    }
    detail::profile_builder b;
    for (const auto& [k, count] : groups) {
      b.add(detail::shown_frames(std::get<3>(k)), std::get<2>(k), std::get<0>(k),
            std::get<1>(k), count);
    }
    raw = b.finish();
  });
  std::string compressed;
  if (!detail::gzip(raw, compressed)) {
    return make_error("debug::write_goroutine_profile: gzip compression failed");
  }
  os.write(compressed.data(), static_cast<std::streamsize>(compressed.size()));
  os.flush();
  if (!os) return make_error("debug::write_goroutine_profile: write failed");
  return {};
#endif
}

}  // namespace goro::debug
