// A result is the value and the error together, not the error: it must be unpacked
// (auto [c, err] = ...) or asked (r.error()); it never converts to goro::error, whose
// bool means the opposite of the result's.
// expect-error: conversion from|no viable conversion
#include <goro/net.hpp>

goro::error connect(const goro::context& ctx) {
  goro::error err = goro::net::dial(ctx, "tcp", "127.0.0.1:80");  // error-here
  return err;
}
