// A YAML stream parsed with libyaml into a compact read-only tree: what the manifest decoders
// read through Field (yaml_fields.h). libyaml's event parser is an order of magnitude faster
// than yaml-cpp's node builder on large manifest directories (docs/BENCHMARKS.md), and the tree
// keeps only what the decoders ask: node kind, scalar text, whether a scalar was quoted, and
// children in document order. Aliases point at their anchor's node (shared, never copied).
// Nodes, scalar text and child lists each live in one array of the stream (no allocation per
// node), so parsing a large file costs little more than libyaml's own scanning.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace skiff::sources {

// A node's children: indexes into the stream's nodes, stored in the stream.
class YamlChildren {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint32_t operator[](size_t i) const { return data_[i]; }

 private:
  friend class YamlStream;
  const uint32_t* data_ = nullptr;
  uint32_t size_ = 0;
};

struct YamlNode {
  enum class Kind : uint8_t { kNull, kScalar, kMap, kSeq };
  Kind kind = Kind::kNull;
  // A scalar written in quotes (or with an explicit !!str tag): "8080" is a name, 8080 a number.
  bool quoted = false;
  std::string_view text;  // scalars only; points into the stream
  YamlChildren children;  // kSeq: items; kMap: key, value, key, value, ...
};

// Every document of one YAML stream. Nodes refer to each other by index. Not copyable (nodes
// point into its arrays); movable.
class YamlStream {
 public:
  YamlStream() = default;
  YamlStream(const YamlStream&) = delete;
  YamlStream& operator=(const YamlStream&) = delete;
  YamlStream(YamlStream&&) = default;
  YamlStream& operator=(YamlStream&&) = default;

  // Parses `text`; false (with `error` set to libyaml's problem and position) on a syntax
  // error, leaving no documents.
  bool Parse(std::string_view text, std::string* error);

  const std::vector<uint32_t>& documents() const { return documents_; }  // root node per doc
  const YamlNode& node(uint32_t index) const { return nodes_[index]; }

 private:
  std::vector<YamlNode> nodes_;
  std::vector<uint32_t> documents_;
  std::vector<char> text_;          // every scalar's text, back to back
  std::vector<uint32_t> children_;  // every collection's children, one run per collection
};

}  // namespace skiff::sources
