// goro/sync.hpp — the sync primitives (Go's package sync). Includes each one's header.
#pragma once

#include "goro/cond.hpp"
#include "goro/mutex.hpp"
#include "goro/once.hpp"
#include "goro/rw_mutex.hpp"
#include "goro/wait_group.hpp"
