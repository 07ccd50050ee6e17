// Reading Kubernetes objects out of YAML (manifests, parsed by libyaml into a YamlStream) or
// simdjson DOM elements (the Kubernetes API's JSON, and JSON manifests) with the field path at
// hand, so every validation error names the exact field (spec.ports[0].port). One Field type
// for both, so both sources run the same decoders (manifest_decode.h) and produce identical
// objects with identical defaults and validation.
//
// Cost: a Field is a small value (a pointer into the parsed document plus an index into the
// thread's path arena, see FieldPath); the path's text is only built when an error is reported,
// and nothing but an arena append happens per field access.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "absl/functional/function_ref.h"

#include "agent/model/objects.h"
#include "agent/sources/yaml_tree.h"

namespace skiff::sources {

struct FieldError {
  std::string field;  // "spec.ports[0].port"; empty when the whole object is at fault
  std::string message;
};

// The path to a field as segments: ".key", "[index]" or "[key]" (a mapping entry). The views
// refer to the decoders' string literals or to keys inside the parsed document, so a path, like
// its Field, must not outlive the parse.
//
// A path is one index into a per-thread arena of segments (each segment names its parent), so
// a Field stays small and making a child path is one append, not a copy of every segment. The
// arena is emptied when the outermost Scope on the thread ends, and a nested Scope gives back
// the segments made inside it when it ends: every decode entry point (and every object of a
// List) opens one, and a path must not be used after the Scope it was made in.
class FieldPath {
 public:
  FieldPath Key(std::string_view key) const { return With(key, kKey); }
  FieldPath Index(size_t index) const { return With({}, static_cast<int32_t>(index)); }
  FieldPath Entry(std::string_view key) const { return With(key, kEntry); }
  std::string ToString() const;  // "spec.ports[0].port"

  class Scope {
   public:
    Scope();
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    uint32_t mark_;  // the arena's size when this Scope began
  };

 private:
  static constexpr int32_t kKey = -1, kEntry = -2;
  FieldPath With(std::string_view key, int32_t index) const;
  uint32_t node_ = 0;   // 0: the empty path; else 1 + the last segment's arena index
  uint32_t epoch_ = 0;  // the arena's epoch when node_ was made (checked by ToString)
};

// A YAML node or JSON element plus the path that leads to it. Missing fields are "absent", as
// are explicit nulls: Kubernetes treats `field: null` like an omitted field. A Field only refers
// into its parsed document, so it must not outlive it.
class Field {
 public:
  Field(const YamlStream& yaml, uint32_t node) : yaml_(&yaml), node_(node), kind_(kYaml) {}
  explicit Field(simdjson::dom::element json) : json_(json), kind_(kJson) {}

  std::string path() const { return path_.ToString(); }
  // The same value with an empty path: a List's item is decoded as an object of its own.
  Field AsRoot() const {
    Field f = *this;
    f.path_ = FieldPath();
    return f;
  }
  bool present() const;
  bool is_map() const;
  bool is_sequence() const;
  bool is_scalar() const;
  // A quoted scalar (a JSON string): tells "8080" (a port name) from 8080 (a number) in
  // IntOrString fields.
  bool is_quoted() const;
  // A scalar's text as written (JSON numbers and booleans in their JSON spelling); "" else.
  std::string scalar() const;
  // The same without a copy when the text is stored as such (YAML scalars, JSON strings).
  std::optional<std::string_view> scalar_view() const;
  // The JSON element, or nullptr for YAML and absent fields.
  const simdjson::dom::element* json_element() const { return json(); }
  // A JSON integer, read directly (no text round trip); nullopt for anything else.
  std::optional<int64_t> json_int() const;

  Field operator[](std::string_view key) const;  // absent unless this is a mapping
  size_t size() const;
  Field operator[](size_t index) const;
  // Calls fn for each entry of a mapping; key is nullopt for a YAML key that is not a scalar.
  void ForEachEntry(
      absl::FunctionRef<void(std::optional<std::string_view> key, const Field& value)> fn) const;
  // Calls fn for each item of a sequence.
  void ForEachItem(absl::FunctionRef<void(const Field& item)> fn) const;

 private:
  enum Kind : uint8_t { kAbsent, kYaml, kJson };
  Field() = default;  // absent
  const YamlNode* yaml() const { return kind_ == kYaml ? &yaml_->node(node_) : nullptr; }
  const simdjson::dom::element* json() const { return kind_ == kJson ? &json_ : nullptr; }
  Field Child(const YamlStream* yaml, uint32_t node, FieldPath path) const;
  Field Child(simdjson::dom::element json, FieldPath path) const;

  const YamlStream* yaml_ = nullptr;
  uint32_t node_ = 0;
  simdjson::dom::element json_;
  Kind kind_ = kAbsent;
  FieldPath path_;
};

// Collects the errors of one object. Readers return nullopt (and record an error) when a
// present field is malformed, and nullopt without an error when it is absent.
class FieldReader {
 public:
  std::vector<FieldError>& errors() { return errors_; }
  bool ok() const { return errors_.empty(); }
  void Error(const Field& f, std::string message) { Error(f.path(), std::move(message)); }
  void Error(std::string field, std::string message);

  std::optional<std::string> String(const Field& f);
  std::string StringOr(const Field& f, std::string fallback);
  std::optional<std::string> RequiredString(const Field& f);
  std::optional<int64_t> Int(const Field& f);
  std::optional<bool> Bool(const Field& f);
  // 1-65535; allow_zero treats 0 as "unset" (nodePort, healthCheckNodePort).
  std::optional<uint16_t> Port(const Field& f, bool allow_zero = false);
  std::optional<model::Protocol> Protocol(const Field& f);  // absent -> TCP
  std::optional<model::IpAddr> Ip(const Field& f);
  std::optional<model::Cidr> Cidr(const Field& f);
  // A number (1-65535) or an IANA service name; quoting decides which, as in the API.
  std::optional<model::IntOrString> PortOrName(const Field& f);
  // A mapping of strings (labels, matchLabels); null values are kept as "".
  model::Labels StringMap(const Field& f);
  // The same checks without keeping anything (annotations).
  void CheckStringMap(const Field& f);
  std::vector<std::string> StringList(const Field& f);
  // Calls fn for each element of a sequence; an absent field is an empty sequence.
  void ForEach(const Field& f, absl::FunctionRef<void(const Field&)> fn);
  // One of `allowed`, else an error listing them; absent -> nullopt.
  std::optional<std::string> Enum(const Field& f, std::initializer_list<std::string_view> allowed);

 private:
  std::vector<FieldError> errors_;
};

// metadata.name/namespace/labels/annotations. Namespaced kinds default the namespace to
// "default", as kubectl does for manifests that leave it out.
model::ObjectMeta ReadMeta(FieldReader& r, const Field& metadata, bool namespaced,
                           bool dns_label_name);

bool IsDnsLabel(const std::string& s);      // RFC 1123 label
bool IsDnsSubdomain(const std::string& s);  // RFC 1123 subdomain
bool IsIanaSvcName(const std::string& s);   // a port name: [a-z0-9-]{1,15} with a letter

}  // namespace skiff::sources
