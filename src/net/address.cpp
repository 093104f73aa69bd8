// address.cpp — see address.hpp.
#include "net/address.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <atomic>
#include <charconv>
#include <cstring>
#include <system_error>

#include "goro/blocking.hpp"
#include "goro/chan.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "goro/semaphore.hpp"

namespace goro::net::addr {

error errno_error(int e) { return error::from(std::error_code(e, std::system_category())); }


std::string zone_name(std::uint32_t scope_id) {
  char name[IF_NAMESIZE] = {};
  if (if_indextoname(scope_id, name) != nullptr) return name;
  return std::to_string(scope_id);
}

namespace {
std::string zone_suffix(std::uint32_t scope_id) {
  return scope_id == 0 ? std::string() : "%" + zone_name(scope_id);
}
}  // namespace

std::optional<std::uint32_t> zone_index(std::string_view zone) {
  if (zone.empty()) return std::nullopt;
  std::uint32_t n = 0;
  auto [end, ec] = std::from_chars(zone.data(), zone.data() + zone.size(), n);
  if (ec == std::errc() && end == zone.data() + zone.size()) return n;
  if (zone.size() >= IF_NAMESIZE || zone.find('\0') != std::string_view::npos) return std::nullopt;
  unsigned index = if_nametoindex(std::string(zone).c_str());
  if (index == 0) return std::nullopt;
  return index;
}

std::string format(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return "[" + std::string(host) + zone_suffix(in6->sin6_scope_id) + "]:" + std::to_string(port);
  }
  return "?";
}

std::string local_name(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  return format(reinterpret_cast<sockaddr*>(&ss));
}

std::string peer_name(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  return format(reinterpret_cast<sockaddr*>(&ss));
}

// The address families a network allows: AF_UNSPEC for "tcp". Empty for others.
std::optional<int> network_family(std::string_view network) {
  if (network == "tcp") return AF_UNSPEC;
  if (network == "tcp4") return AF_INET;
  if (network == "tcp6") return AF_INET6;
  return std::nullopt;
}

// Go's net.SplitHostPort plus a numeric port. On failure returns the reason.
std::optional<host_port> split_host_port(std::string_view address, std::string& why) {
  std::string_view host, port;
  if (!address.empty() && address.front() == '[') {
    auto close = address.find(']');
    if (close == std::string_view::npos) {
      why = "missing ']' in address";
      return std::nullopt;
    }
    if (close + 1 == address.size()) {
      why = "missing port in address";
      return std::nullopt;
    }
    if (address[close + 1] != ':') {
      why = "unexpected character after ']' in address";
      return std::nullopt;
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos) {
      why = "missing port in address";
      return std::nullopt;
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      why = "too many colons in address";
      return std::nullopt;
    }
  }
  host_port hp;
  hp.host = std::string(host);
  if (port.empty()) return hp;  // port 0
  // Go's parsePort: an optional sign, then digits ("+80" is 80, "-1" out of range).
  bool negative = port.front() == '-';
  if (port.front() == '+' || negative) port.remove_prefix(1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec == std::errc::invalid_argument || end != port.data() + port.size()) {
    why = "unknown port";
    return std::nullopt;
  }
  if (negative || ec == std::errc::result_out_of_range || value > 65535) {
    why = "invalid port";
    return std::nullopt;
  }
  hp.port = static_cast<std::uint16_t>(value);
  return hp;
}

std::atomic<getaddrinfo_fn*> resolver_hook{&::getaddrinfo};

namespace {

endpoint make_endpoint(const sockaddr* sa, socklen_t len, std::uint16_t port) {
  endpoint e;
  std::memcpy(&e.ss, sa, len);
  e.len = len;
  if (sa->sa_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&e.ss)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&e.ss)->sin6_port = htons(port);
  }
  return e;
}

struct resolved {
  std::vector<endpoint> endpoints;
  int gai_error = 0;
  int sys_errno = 0;
};

// getaddrinfo for the name `host` in `family`.
resolved getaddrinfo_for(const std::string& host, int family, std::uint16_t port) {
  resolved r;
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  int rc = resolver_hook.load(std::memory_order_acquire)(host.c_str(), nullptr, &hints, &list);
  if (rc != 0) {
    r.gai_error = rc;
    r.sys_errno = errno;
    return r;
  }
  for (addrinfo* ai = list; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    r.endpoints.push_back(make_endpoint(ai->ai_addr, ai->ai_addrlen, port));
  }
  if (list != nullptr) freeaddrinfo(list);
  return r;
}

error lookup_error(const std::string& shown_host, const resolved& r) {
  std::string text = "lookup " + shown_host;
  if (r.gai_error == EAI_SYSTEM) return wrap(errno_error(r.sys_errno), text);
  if (r.gai_error == EAI_NONAME || r.gai_error == EAI_NODATA)
    return make_error(text + ": no such host");
  return make_error(text + ": " + gai_strerror(r.gai_error));
}

// An IP address literal ("127.0.0.1", "::1", "fe80::1%eth0"), parsed strictly as Go's
// net.ParseIP does: dotted-quad decimal only, never inet_aton's "127.1" or "0x7f.1".
// nullopt if `host` is not one; endpoints empty if it is, but of the wrong family.
// An IPv6 literal with a zone that names no interface sets `bad_zone` (and is nullopt).
std::optional<std::vector<endpoint>> address_literal(const std::string& host, int family,
                                                     std::uint16_t port, bool& bad_zone) {
  in_addr v4{};
  if (host.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, host.c_str(), &v4) != 1) return std::nullopt;
    if (family == AF_INET6) return std::vector<endpoint>{};
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr = v4;
    return std::vector<endpoint>{make_endpoint(reinterpret_cast<sockaddr*>(&in), sizeof in, port)};
  }
  // "fe80::1%eth0": the zone is an interface name or number (sin6_scope_id).
  std::string ip = host;
  std::string_view zone;
  bool zoned = false;
  if (auto pct = host.find('%'); pct != std::string::npos) {
    ip = host.substr(0, pct);
    zone = std::string_view(host).substr(pct + 1);
    zoned = true;
    if (zone.empty()) return std::nullopt;
  }
  sockaddr_in6 in6{};
  if (inet_pton(AF_INET6, ip.c_str(), &in6.sin6_addr) != 1) return std::nullopt;
  in6.sin6_family = AF_INET6;
  if (zoned) {
    auto index = zone_index(zone);
    if (!index) {
      bad_zone = true;
      return std::nullopt;
    }
    in6.sin6_scope_id = *index;
  }
  if (family == AF_INET) return std::vector<endpoint>{};
  return std::vector<endpoint>{make_endpoint(reinterpret_cast<sockaddr*>(&in6), sizeof in6, port)};
}

// Go's isDomainName: what its resolver accepts as a name (RFC 1035 labels of letters,
// digits, '-' and '_', at most 63 bytes each and 254 in all, not all digits). Anything
// else, a NUL byte above all, is "no such host" without asking the resolver: libc
// would stop at the NUL and resolve what comes before it.
bool is_domain_name(std::string_view s) {
  if (s == ".") return true;
  // 254 bytes only with the root's trailing dot (253 without).
  if (s.empty() || s.size() > 254 || (s.size() == 254 && s.back() != '.')) return false;
  char last = '.';
  bool non_numeric = false;
  std::size_t label = 0;
  for (char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
      non_numeric = true;
      ++label;
    } else if (c >= '0' && c <= '9') {
      ++label;
    } else if (c == '-') {
      if (last == '.') return false;
      ++label;
      non_numeric = true;
    } else if (c == '.') {
      if (last == '.' || last == '-' || label > 63 || label == 0) return false;
      label = 0;
    } else {
      return false;
    }
    last = c;
  }
  return last != '-' && label <= 63 && non_numeric;
}

// Lookups running at once (those abandoned by a cancelled dial included). Like Go's
// limit on concurrent cgo resolver threads: a slow resolver ties up at most this
// many blocking helpers; further lookups wait their turn (and their context).
constexpr std::int64_t max_lookups = 64;
semaphore& lookup_slots() {
  static semaphore* const slots = new semaphore(max_lookups);  // used by abandoned lookups
  return *slots;                                               // until exit: never freed
}

}  // namespace

std::string printable_host(std::string_view host) {
  std::string out;
  for (unsigned char c : host) {
    if (c < 0x20 || c == 0x7f) {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::pair<std::vector<endpoint>, error> resolve(const context* ctx, bool listening, int family,
                                                const host_port& hp) {
  std::vector<endpoint> out;
  if (hp.host.empty()) {
    if (family != AF_INET) {
      sockaddr_in6 in6{};
      in6.sin6_family = AF_INET6;
      in6.sin6_addr = listening ? in6addr_any : in6addr_loopback;
      out.push_back(make_endpoint(reinterpret_cast<sockaddr*>(&in6), sizeof in6, hp.port));
    }
    if (family != AF_INET6) {
      sockaddr_in in{};
      in.sin_family = AF_INET;
      in.sin_addr.s_addr = htonl(listening ? INADDR_ANY : INADDR_LOOPBACK);
      out.push_back(make_endpoint(reinterpret_cast<sockaddr*>(&in), sizeof in, hp.port));
    }
    return {std::move(out), {}};
  }
  const std::string shown = printable_host(hp.host);
  if (hp.host.find('\0') == std::string::npos) {
    bool bad_zone = false;
    auto literal = address_literal(hp.host, family, hp.port, bad_zone);
    if (bad_zone) {
      std::string zone = hp.host.substr(hp.host.find('%') + 1);
      return {{}, make_error("address " + shown + ": unknown zone " + printable_host(zone) +
                                 " (no network interface of that name)")};
    }
    if (literal) {
      // An address literal of the other family ("tcp4" with "[::1]").
      if (literal->empty()) return {{}, make_error("address " + shown + ": no suitable address")};
      return {std::move(*literal), {}};
    }
  }
  // libc's resolver reads inet_aton's forms ("0x7f.1", "0177.0.0.1", "2130706433") as
  // addresses before any lookup; Go's takes them for names that do not exist. So does
  // goro: an allow-list matching the spelling must not be passed by an odd one.
  in_addr odd_v4{};
  if (!is_domain_name(hp.host) || inet_aton(hp.host.c_str(), &odd_v4) != 0) {
    return {{}, make_error("lookup " + shown + ": no such host")};
  }
  // A name: resolve it off the processors (getaddrinfo may block on the network), in a
  // goroutine of its own that the caller abandons if ctx ends first.
  auto result = make_chan<resolved>(1);
  std::optional<context> lookup_ctx;
  if (ctx != nullptr) lookup_ctx = *ctx;
  go([result, lookup_ctx, host = hp.host, family, port = hp.port] {
    semaphore& slots = lookup_slots();
    if (lookup_ctx) {
      if (slots.acquire(*lookup_ctx, 1)) return;  // the caller has given up already
    } else {
      slots.acquire(1);
    }
    resolved r = goro::blocking([&] { return getaddrinfo_for(host, family, port); });
    slots.release(1);
    result.send(std::move(r));
  });
  resolved r;
  if (ctx == nullptr) {
    r = *result.recv();
  } else {
    std::optional<resolved> got;
    if (select(case_recv(result, got), case_recv(ctx->done())) == 1) {
      return {{}, wrap(ctx->err(), "lookup " + shown)};
    }
    r = std::move(*got);
  }
  if (r.gai_error != 0) return {{}, lookup_error(shown, r)};
  if (r.endpoints.empty()) return {{}, make_error("lookup " + shown + ": no suitable address")};
  return {std::move(r.endpoints), {}};
}

int max_concurrent_lookups() noexcept { return static_cast<int>(max_lookups); }

// The network and address of a listen or dial, checked; err says what is wrong
// ("dial udp: unknown network udp", "listen tcp: address x: missing port in address").
target parse_target(const std::string& op, std::string_view network, std::string_view address) {
  target t;
  auto family = network_family(network);
  if (!family) {
    t.err = make_error(op + ": unknown network " + std::string(network));
    return t;
  }
  t.family = *family;
  std::string why;
  auto hp = split_host_port(address, why);
  if (!hp) {
    t.err = make_error(op + ": address " + std::string(address) + ": " + why);
    return t;
  }
  t.hp = std::move(*hp);
  return t;
}


}  // namespace goro::net::addr
