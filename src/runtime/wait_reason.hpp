// wait_reason.hpp — the runtime's view of goro/detail/wait_reason.hpp.
#pragma once

#include "goro/detail/wait_reason.hpp"
