// goro/sync.hpp — the sync primitives (Go's package sync). Includes each one's header.
#pragma once

#include "goro/wait_group.hpp"
