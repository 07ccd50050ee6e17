// Reading Kubernetes objects out of yaml-cpp nodes (manifests) or simdjson DOM elements (the
// Kubernetes API's JSON) with the field path at hand, so every validation error names the
// exact field (spec.ports[0].port), and without exceptions: the accessors below only call
// yaml-cpp operations that cannot throw on a node whose type they checked first, and
// simdjson's error-code API. One Field type for both, so both sources run the same decoders
// (manifest_decode.h) and produce identical objects with identical defaults and validation.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include "agent/model/objects.h"

namespace skiff::sources {

struct FieldError {
  std::string field;  // "spec.ports[0].port"; empty when the whole object is at fault
  std::string message;
};

// A YAML node or JSON element plus the path that leads to it. Missing fields are "absent", as
// are explicit nulls: Kubernetes treats `field: null` like an omitted field. A JSON Field only
// refers into its parser's document, so it must not outlive the parse.
class Field {
 public:
  Field(YAML::Node node, std::string path) : value_(std::move(node)), path_(std::move(path)) {}
  Field(simdjson::dom::element json, std::string path) : value_(json), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  // The YAML node (an undefined node for JSON fields).
  YAML::Node node() const;
  bool present() const;
  bool is_map() const;
  bool is_sequence() const;
  bool is_scalar() const;
  // A quoted scalar (a JSON string): tells "8080" (a port name) from 8080 (a number) in
  // IntOrString fields.
  bool is_quoted() const;
  // A scalar's text as written (JSON numbers and booleans in their JSON spelling); "" else.
  std::string scalar() const;

  Field operator[](const std::string& key) const;  // absent unless this is a mapping
  size_t size() const;
  Field operator[](size_t index) const;
  // Calls fn for each entry of a mapping; key is nullopt for a YAML key that is not a scalar.
  void ForEachEntry(const std::function<void(const std::optional<std::string>& key,
                                             const Field& value)>& fn) const;

 private:
  explicit Field(std::string path) : path_(std::move(path)) {}  // an absent JSON field
  const YAML::Node* yaml() const { return std::get_if<YAML::Node>(&value_); }
  const simdjson::dom::element* json() const {
    return std::get_if<simdjson::dom::element>(&value_);
  }

  // monostate: an absent JSON field (cheaper than an undefined YAML node).
  std::variant<std::monostate, YAML::Node, simdjson::dom::element> value_;
  std::string path_;
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
  std::map<std::string, std::string> StringMap(const Field& f);
  std::vector<std::string> StringList(const Field& f);
  // Calls fn for each element of a sequence; an absent field is an empty sequence.
  void ForEach(const Field& f, const std::function<void(const Field&)>& fn);
  // One of `allowed`, else an error listing them; absent -> nullopt.
  std::optional<std::string> Enum(const Field& f, const std::vector<std::string>& allowed);

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
