// echo_client — talks to echo_server: opens connections concurrently, sends numbered
// lines on each and checks that every one comes back unchanged.
//
//   echo_client address [connections=4] [messages=100]
//
// Exits 0 when every echo matched; prints the first problem and exits 1 otherwise.
#include <goro/goro.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: echo_client address [connections] [messages]\n");
    return 2;
  }
  std::string address = argv[1];
  int connections = argc > 2 ? std::atoi(argv[2]) : 4;
  int messages = argc > 3 ? std::atoi(argv[3]) : 100;

  return goro::run([&]() -> int {
    // Everything must be done within 10 s: the context bounds dials and reads alike.
    auto [ctx, cancel] = goro::with_timeout(goro::background(), 10s);
    auto [g, gctx] = goro::errgroup::with_context(ctx);
    for (int i = 0; i < connections; ++i) {
      g.go([&, i, gctx = gctx]() -> goro::error {
        auto [c, err] = goro::net::dial(gctx, "tcp", address);
        if (err) return err;
        c.set_deadline(*gctx.deadline());
        for (int m = 0; m < messages; ++m) {
          std::string line =
              "connection " + std::to_string(i) + " message " + std::to_string(m) + "\n";
          if (auto [n, werr] = c.write(line); werr) return werr;
          std::string back(line.size(), '\0');
          if (auto [n, rerr] = c.read_full(std::span<char>(back)); rerr) return rerr;
          if (back != line)
            return goro::make_error("echo mismatch on connection " + std::to_string(i));
        }
        c.close();
        return {};
      });
    }
    if (goro::error err = g.wait()) {
      std::fprintf(stderr, "echo_client: %s\n", err.message().c_str());
      return 1;
    }
    std::printf("%d connections x %d messages echoed\n", connections, messages);
    return 0;
  });
}
