// Process-wide logging: leveled, one line per meaningful event, as text or as JSON objects
// (one per line, for log shippers). Nothing is logged per packet.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace skiff {

absl::Status SetupLogging(const std::string& level, const std::string& format);

}  // namespace skiff
