// Table-driven PROG_TEST_RUN cases: {description, input packet, map setup, expected verdict,
// expected output bytes, expected map state}. A suite keeps a vector of cases and runs each
// through RunBpfCase(), which checks the verdict by name, the output field by field, and
// then the suite's own map expectations.
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include "tests/harness/bpf_run.h"
#include "tests/harness/packet.h"

namespace skiff::testing {

template <typename Env>
struct BpfCase {
  std::string name;         // gtest name suffix: letters, digits and '_'
  std::string description;  // what the case proves, printed on failure
  Bytes input;
  std::function<void(Env&)> setup;  // map state before the run (may be empty)
  int32_t verdict = 0;
  std::optional<Bytes> output;                         // exact expected packet, when the case cares
  std::function<void(Env&, const RunResult&)> expect;  // map state after the run
};

template <typename Env>
void PrintTo(const BpfCase<Env>& c, std::ostream* os) {
  *os << c.name;
}

// gtest parameter name printer for INSTANTIATE_TEST_SUITE_P.
struct BpfCaseName {
  template <typename P>
  std::string operator()(const ::testing::TestParamInfo<P>& info) const {
    return info.param.name;
  }
};

template <typename Env>
void RunBpfCase(ProgKind kind, int prog_fd, Env& env, const BpfCase<Env>& c) {
  SCOPED_TRACE(c.description);
  if (c.setup) c.setup(env);
  auto r = RunProgram(prog_fd, c.input);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_VERDICT(kind, c.verdict, r->retval);
  if (c.output) EXPECT_PACKET_EQ(*c.output, r->out);
  if (c.expect) c.expect(env, *r);
}

}  // namespace skiff::testing
