// agentctl: inspect a node's Skiff datapath. See docs/cli.md.
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  return skiff::cli::RunAgentctl(argc, argv, std::cout, std::cerr);
}
