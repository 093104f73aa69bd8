// address.hpp — goro::net's addresses: Go's host:port syntax, host checks, name
// resolution and printing. Shared by net.cpp (listen, dial) and the debug server, so
// that every address goro takes is parsed one way.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <atomic>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "goro/context.hpp"
#include "goro/error.hpp"

namespace goro::net::addr {

error errno_error(int e);

struct endpoint {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
};

// "127.0.0.1:80", "[::1]:80", "[fe80::1%eth0]:80" (a nonzero sin6_scope_id is printed
// as its interface name, or as the number if no interface has it).
std::string format(const sockaddr* sa);
// The interface name of an IPv6 scope id, or its number if no interface has it.
std::string zone_name(std::uint32_t scope_id);
// The scope id for an IPv6 zone: a number, or the name of an interface; nullopt for
// an empty zone or a name no interface has.
std::optional<std::uint32_t> zone_index(std::string_view zone);
inline std::string format(const endpoint& e) { return format(reinterpret_cast<const sockaddr*>(&e.ss)); }

// The local and the peer address of a socket, formatted; empty if unknown.
std::string local_name(int fd);
std::string peer_name(int fd);

// The address families a network allows: AF_UNSPEC for "tcp"; nullopt if unknown.
std::optional<int> network_family(std::string_view network);

struct host_port {
  std::string host;
  std::uint16_t port = 0;
};

// Go's net.SplitHostPort plus a numeric port (0-65535; empty means 0) and a host
// check. On failure returns nullopt and sets `why` ("missing port in address").
std::optional<host_port> split_host_port(std::string_view address, std::string& why);

// Resolves host:port for listening or dialing. Empty host: the wildcard addresses
// when listening, the loopback addresses when dialing. Names are looked up off the
// processors; ctx (may be null) abandons a lookup in progress.
std::pair<std::vector<endpoint>, error> resolve(const context* ctx, bool listening, int family,
                                                const host_port& hp);

// `host` with control bytes (NUL above all) written as \xNN, for error messages.
std::string printable_host(std::string_view host);

// Name lookups run through this (getaddrinfo's signature; tests put a slow resolver
// here). At most max_concurrent_lookups() calls run at once.
using getaddrinfo_fn = int(const char*, const char*, const addrinfo*, addrinfo**);
extern std::atomic<getaddrinfo_fn*> resolver_hook;
int max_concurrent_lookups() noexcept;

struct target {
  int family = 0;
  host_port hp;
  error err;
};

// The network and address of a listen or dial, checked; err says what is wrong
// ("dial udp: unknown network udp", "listen tcp: address x: missing port in address").
target parse_target(const std::string& op, std::string_view network, std::string_view address);

}  // namespace goro::net::addr
