// goro/goro.hpp — everything goro offers, in one include (except goro/testing.hpp,
// which needs GoogleTest). Each header documents its own blocking, thread-safety and
// panics.
#pragma once

#include "goro/blocking.hpp"
#include "goro/chan.hpp"
#include "goro/context.hpp"
#include "goro/debug.hpp"
#include "goro/defer.hpp"
#include "goro/errgroup.hpp"
#include "goro/error.hpp"
#include "goro/net.hpp"
#include "goro/panic.hpp"
#include "goro/result.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "goro/synctest.hpp"
#include "goro/semaphore.hpp"
#include "goro/sync.hpp"
#include "goro/time.hpp"
#include "goro/wait_group.hpp"
