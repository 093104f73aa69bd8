// dial.hpp — how goro::net::dial tries the addresses a name resolves to (Go's
// dialSerial, partialDeadline and dialParallel in net/dial.go). Internal; tests use it
// to dial a chosen list of endpoints.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "goro/context.hpp"
#include "goro/error.hpp"
#include "goro/net.hpp"
#include "goro/result.hpp"
#include "goro/time.hpp"
#include "net/address.hpp"

namespace goro::net::dialing {

// How long "tcp" waits on the first address family before it also starts on the
// other (Go's fallbackDelay, RFC 6555 "happy eyeballs").
inline constexpr std::chrono::milliseconds fallback_delay{300};
// The least time one address gets while the overall deadline allows it (Go's
// saneMinimum).
inline constexpr std::chrono::seconds min_attempt_time{2};

// The deadline for the next of `remaining` (>= 1) addresses when the whole dial ends
// at `deadline`: an equal share of the time left, at least min_attempt_time, never
// later than `deadline`. nullopt if `deadline` is not after `now`.
std::optional<time_point> partial_deadline(time_point now, time_point deadline,
                                           std::size_t remaining);

// Dials `eps` (resolved for `network`) as dial does: in order, each address given its
// partial deadline; for "tcp" with both families, the family of the first address
// first and the other after fallback_delay (at once if the first family fails), the
// first connection to succeed winning. All fail: the first error (of the first family).
result<conn> dial_endpoints(const context& ctx, std::string_view network,
                            const std::vector<addr::endpoint>& eps);

}  // namespace goro::net::dialing
