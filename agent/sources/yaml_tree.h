// A YAML stream parsed with libyaml into a compact read-only tree: what the manifest decoders
// read through Field (yaml_fields.h). libyaml's event parser is an order of magnitude faster
// than yaml-cpp's node builder on large manifest directories (docs/BENCHMARKS.md), and the tree
// keeps only what the decoders ask: node kind, scalar text, whether a scalar was quoted, and
// children in document order. Aliases point at their anchor's node (shared, never copied).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace skiff::sources {

struct YamlNode {
  enum class Kind : uint8_t { kNull, kScalar, kMap, kSeq };
  Kind kind = Kind::kNull;
  // A scalar written in quotes (or with an explicit !!str tag): "8080" is a name, 8080 a number.
  bool quoted = false;
  std::string text;                // scalars only
  std::vector<uint32_t> children;  // kSeq: items; kMap: key, value, key, value, ...
};

// Every document of one YAML stream. Nodes refer to each other by index.
class YamlStream {
 public:
  // Parses `text`; false (with `error` set to libyaml's problem and position) on a syntax
  // error, leaving no documents.
  bool Parse(std::string_view text, std::string* error);

  const std::vector<uint32_t>& documents() const { return documents_; }  // root node per doc
  const YamlNode& node(uint32_t index) const { return nodes_[index]; }

 private:
  std::vector<YamlNode> nodes_;
  std::vector<uint32_t> documents_;
};

}  // namespace skiff::sources
