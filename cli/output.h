// agentctl's output formats. `-o json` and `-o yaml` print the API's response message with
// the proto's field names, every field present (defaults included) and numbers as numbers —
// a stable contract documented in docs/cli.md. A streamed answer prints as one document: its
// messages' repeated fields concatenated. Map entries print as {"key": {...}, "value": {...}}
// objects of their decoded fields. `-o table` (default) prints kubectl-style aligned columns.
#pragma once

#include <google/protobuf/message.h>

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff::cli {

enum class Format { kTable, kJson, kYaml };
absl::StatusOr<Format> ParseFormat(const std::string& s);

using Json = nlohmann::ordered_json;

// Every field in declaration order; oneofs only when set; 64-bit integers as numbers.
Json ToJson(const google::protobuf::Message& m);
std::string ToYaml(const Json& j);
// The document in `format` (kJson or kYaml), ending with a newline.
std::string Render(const Json& j, Format format);

// A document whose last field is a list too long to hold: the head fields print first, then
// each item as it arrives. The result is byte-for-byte what Render() prints for the whole.
class StreamingList {
 public:
  StreamingList(std::ostream& out, Format format, Json head, std::string list_key);
  void Add(const Json& item);
  void End();

 private:
  void Open();
  std::ostream& out_;
  Format format_;
  Json head_;
  std::string key_;
  bool opened_ = false;
  size_t count_ = 0;
};

// kubectl-style table: uppercase headers, columns padded to the widest cell plus three
// spaces, no trailing spaces, "<none>" for empty cells.
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size(); }
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace skiff::cli
