// agentctl's commands. RunAgentctl is main() without the process: tests run the whole CLI
// in-process against an in-process server.
#pragma once

#include <iosfwd>

namespace skiff::cli {

int RunAgentctl(int argc, char** argv, std::ostream& out, std::ostream& err);

// The bash completion script (`agentctl completion bash`).
const char* BashCompletion();

}  // namespace skiff::cli
