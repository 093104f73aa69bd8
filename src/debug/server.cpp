// server.cpp — goro::debug::serve: /debug/pprof/goroutine over HTTP (cpp-httplib).
//
// The server runs on its own OS threads (httplib's listener and workers), never on a
// processor, so it answers even when every processor is busy with goroutines that do
// not yield. It lives until the process exits.
#include <string>

#include "goro/debug.hpp"

#if defined(GORO_HAVE_HTTPLIB)
#include <httplib.h>

#include <thread>
#endif

namespace goro::detail {
void disable_deadlock_detection() noexcept;  // scheduler.cpp
}

namespace goro::debug {

#if defined(GORO_HAVE_HTTPLIB)
namespace {

bool loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

const char* index_page =
    "<html><head><title>/debug/pprof/</title></head><body>\n"
    "<p>goro goroutine profiles</p>\n"
    "<ul>\n"
    "<li><a href=\"goroutine?debug=1\">goroutine?debug=1</a>: stacks grouped, with counts</li>\n"
    "<li><a href=\"goroutine?debug=2\">goroutine?debug=2</a>: every goroutine, Go's panic "
    "layout</li>\n"
    "</ul></body></html>\n";

}  // namespace

error serve(const std::string& addr, bool allow_remote) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos)
    return make_error("debug::serve: address " + addr + " has no port");
  std::string host = addr.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(addr.substr(colon + 1));
  } catch (...) {
    return make_error("debug::serve: bad port in " + addr);
  }
  if (host.empty()) host = "127.0.0.1";
  if (!allow_remote && !loopback(host)) {
    return make_error("debug::serve: " + host + " is not a loopback address (pass allow_remote)");
  }
  auto* server = new httplib::Server;  // lives for the rest of the process
  server->Get("/debug/pprof/goroutine", [](const httplib::Request& req, httplib::Response& res) {
    int level = 1;
    if (req.has_param("debug")) level = req.get_param_value("debug") == "2" ? 2 : 1;
    res.set_content(goroutines(level), "text/plain; charset=utf-8");
  });
  server->Get("/debug/pprof/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(index_page, "text/html");
  });
  if (!server->bind_to_port(host.c_str(), port)) {
    delete server;
    return make_error("debug::serve: cannot listen on " + addr);
  }
  detail::disable_deadlock_detection();  // its threads could act on goroutines
  std::thread([server] { server->listen_after_bind(); }).detach();
  return {};
}
#else
error serve(const std::string& addr, bool) {
  return make_error("debug::serve(" + addr +
                    "): goro was built without the debug HTTP server (GORO_DEBUG_SERVER=OFF or "
                    "cpp-httplib missing)");
}
#endif

}  // namespace goro::debug
