#include "agent/sources/yaml_fields.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace skiff::sources {
namespace {

// How a malformed value is echoed back: scalars as written, anything else by shape.
std::string Describe(const Field& f) {
  if (f.is_scalar()) return f.is_quoted() ? absl::StrCat("\"", f.scalar(), "\"") : f.scalar();
  if (f.is_map()) return "a mapping";
  if (f.is_sequence()) return "a list";
  return "null";
}

using JsonType = simdjson::dom::element_type;

}  // namespace

YAML::Node Field::node() const {
  if (const YAML::Node* n = yaml()) return *n;
  return YAML::Node(YAML::NodeType::Undefined);
}

bool Field::present() const {
  if (const YAML::Node* n = yaml()) return n->IsDefined() && !n->IsNull();
  if (const simdjson::dom::element* j = json()) return !j->is_null();
  return false;
}

bool Field::is_map() const {
  if (const YAML::Node* n = yaml()) return present() && n->IsMap();
  if (const simdjson::dom::element* j = json()) return j->is_object();
  return false;
}

bool Field::is_sequence() const {
  if (const YAML::Node* n = yaml()) return present() && n->IsSequence();
  if (const simdjson::dom::element* j = json()) return j->is_array();
  return false;
}

bool Field::is_scalar() const {
  if (const YAML::Node* n = yaml()) return present() && n->IsScalar();
  if (const simdjson::dom::element* j = json()) {
    return present() && !j->is_object() && !j->is_array();
  }
  return false;
}

bool Field::is_quoted() const {
  if (const YAML::Node* n = yaml()) return is_scalar() && n->Tag() == "!";
  if (const simdjson::dom::element* j = json()) return j->is_string();
  return false;
}

std::string Field::scalar() const {
  if (!is_scalar()) return "";
  if (const YAML::Node* n = yaml()) return n->Scalar();
  const simdjson::dom::element& j = *json();
  switch (j.type()) {
    case JsonType::STRING:
      return std::string(std::string_view(j.get_string().value_unsafe()));
    case JsonType::INT64:
      return std::to_string(j.get_int64().value_unsafe());
    case JsonType::UINT64:
      return std::to_string(j.get_uint64().value_unsafe());
    case JsonType::DOUBLE: {
      // Keep the fraction visible so 80.0 is reported (and rejected) as a non-integer, as the
      // API server's strict decoder does.
      std::string text = absl::StrCat(j.get_double().value_unsafe());
      if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
      return text;
    }
    case JsonType::BOOL:
      return j.get_bool().value_unsafe() ? "true" : "false";
    default:
      return "";
  }
}

Field Field::operator[](const std::string& key) const {
  std::string path = path_.empty() ? key : absl::StrCat(path_, ".", key);
  if (const simdjson::dom::element* j = json()) {
    simdjson::dom::element child;
    if (!j->is_object() || j->get_object().value_unsafe().at_key(key).get(child) != 0) {
      return Field(std::move(path));
    }
    return Field(child, std::move(path));
  }
  // yaml-cpp throws when a scalar is subscripted, so only mappings are.
  if (!is_map()) return Field(YAML::Node(YAML::NodeType::Undefined), std::move(path));
  const YAML::Node& n = *yaml();
  // A missing key yields an invalid "zombie" node on which most calls throw; hand out a plain
  // undefined node instead. (Never assign to a YAML::Node here: operator= writes through to the
  // referenced node.)
  const YAML::Node child = n[key];
  if (!child.IsDefined()) return Field(YAML::Node(YAML::NodeType::Undefined), std::move(path));
  return Field(child, std::move(path));
}

size_t Field::size() const {
  if (!is_sequence()) return 0;
  if (const simdjson::dom::element* j = json()) return j->get_array().value_unsafe().size();
  return yaml()->size();
}

Field Field::operator[](size_t index) const {
  std::string path = absl::StrCat(path_, "[", index, "]");
  if (const simdjson::dom::element* j = json()) {
    simdjson::dom::element child;
    if (!j->is_array() || j->get_array().value_unsafe().at(index).get(child) != 0) {
      return Field(std::move(path));
    }
    return Field(child, std::move(path));
  }
  if (!is_sequence() || index >= yaml()->size()) {
    return Field(YAML::Node(YAML::NodeType::Undefined), std::move(path));
  }
  const YAML::Node& n = *yaml();
  return Field(n[index], std::move(path));
}

void Field::ForEachEntry(
    const std::function<void(const std::optional<std::string>&, const Field&)>& fn) const {
  if (!is_map()) return;
  if (const simdjson::dom::element* j = json()) {
    const simdjson::dom::object object = j->get_object().value_unsafe();
    for (simdjson::dom::key_value_pair kv : object) {
      std::string key(std::string_view(kv.key));
      fn(key, Field(kv.value, absl::StrCat(path_, "[", key, "]")));
    }
    return;
  }
  for (const auto& kv : *yaml()) {
    if (!kv.first.IsScalar()) {
      fn(std::nullopt, Field(kv.second, path_));
      continue;
    }
    const std::string key = kv.first.Scalar();
    fn(key, Field(kv.second, absl::StrCat(path_, "[", key, "]")));
  }
}

void FieldReader::Error(std::string field, std::string message) {
  errors_.push_back(FieldError{std::move(field), std::move(message)});
}

std::optional<std::string> FieldReader::String(const Field& f) {
  if (!f.present()) return std::nullopt;
  if (!f.is_scalar()) {
    Error(f, absl::StrCat("expected a string, got ", Describe(f)));
    return std::nullopt;
  }
  return f.scalar();
}

std::string FieldReader::StringOr(const Field& f, std::string fallback) {
  std::optional<std::string> s = String(f);
  return s ? *s : std::move(fallback);
}

std::optional<std::string> FieldReader::RequiredString(const Field& f) {
  std::optional<std::string> s = String(f);
  if (!s && !f.present()) Error(f, "is required");
  if (s && s->empty()) {
    Error(f, "must not be empty");
    return std::nullopt;
  }
  return s;
}

std::optional<int64_t> FieldReader::Int(const Field& f) {
  if (!f.present()) return std::nullopt;
  if (f.is_scalar()) {
    const std::string& s = f.scalar();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (!s.empty() && ec == std::errc() && end == s.data() + s.size()) return v;
  }
  Error(f, absl::StrCat("expected an integer, got ", Describe(f)));
  return std::nullopt;
}

std::optional<bool> FieldReader::Bool(const Field& f) {
  if (!f.present()) return std::nullopt;
  if (f.is_scalar() && !f.is_quoted()) {
    std::string s = f.scalar();
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    // YAML 1.1 booleans too, as kubectl's YAML decoder (go-yaml v2) accepts them.
    if (s == "true" || s == "yes" || s == "y" || s == "on") return true;
    if (s == "false" || s == "no" || s == "n" || s == "off") return false;
  }
  Error(f, absl::StrCat("expected true or false, got ", Describe(f)));
  return std::nullopt;
}

std::optional<uint16_t> FieldReader::Port(const Field& f, bool allow_zero) {
  std::optional<int64_t> v = Int(f);
  if (!v) return std::nullopt;
  if (*v == 0 && allow_zero) return uint16_t{0};
  if (*v < 1 || *v > 65535) {
    Error(f, absl::StrCat(*v, " is out of range 1-65535"));
    return std::nullopt;
  }
  return static_cast<uint16_t>(*v);
}

std::optional<model::Protocol> FieldReader::Protocol(const Field& f) {
  if (!f.present()) return model::Protocol::kTcp;
  std::optional<std::string> s = String(f);
  if (!s) return std::nullopt;
  if (*s == "TCP") return model::Protocol::kTcp;
  if (*s == "UDP") return model::Protocol::kUdp;
  if (*s == "SCTP") return model::Protocol::kSctp;
  Error(f, absl::StrCat("unknown protocol \"", *s, "\" (want TCP, UDP or SCTP)"));
  return std::nullopt;
}

std::optional<model::IpAddr> FieldReader::Ip(const Field& f) {
  std::optional<std::string> s = String(f);
  if (!s) return std::nullopt;
  std::optional<model::IpAddr> ip = model::IpAddr::Parse(*s);
  if (!ip) Error(f, absl::StrCat("\"", *s, "\" is not a valid IP address"));
  return ip;
}

std::optional<model::Cidr> FieldReader::Cidr(const Field& f) {
  std::optional<std::string> s = String(f);
  if (!s) return std::nullopt;
  std::optional<model::Cidr> cidr = model::Cidr::Parse(*s);
  if (!cidr) Error(f, absl::StrCat("\"", *s, "\" is not a valid CIDR (e.g. 10.0.0.0/8)"));
  return cidr;
}

std::optional<model::IntOrString> FieldReader::PortOrName(const Field& f) {
  if (!f.present()) return std::nullopt;
  if (f.is_scalar() && !f.is_quoted()) {
    const std::string& s = f.scalar();
    const bool numeric = !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
      return std::isdigit(c) || c == '-';
    });
    if (numeric) {
      std::optional<uint16_t> port = Port(f);
      if (!port) return std::nullopt;
      return model::IntOrString{int32_t{*port}};
    }
  }
  std::optional<std::string> name = String(f);
  if (!name) return std::nullopt;
  if (!IsIanaSvcName(*name)) {
    Error(f, absl::StrCat("\"", *name,
                          "\" is neither a port number nor a valid port name (at most 15 "
                          "characters of a-z, 0-9 and '-', with at least one letter)"));
    return std::nullopt;
  }
  return model::IntOrString{*name};
}

std::map<std::string, std::string> FieldReader::StringMap(const Field& f) {
  std::map<std::string, std::string> out;
  if (!f.present()) return out;
  if (!f.is_map()) {
    Error(f, absl::StrCat("expected a mapping, got ", Describe(f)));
    return out;
  }
  f.ForEachEntry([&](const std::optional<std::string>& key, const Field& value) {
    if (!key) {
      Error(f, "keys must be strings");
      return;
    }
    // A null value is kept as "" (kubectl does the same for labels written as `key:`).
    if (!value.present()) {
      out[*key] = "";
    } else if (std::optional<std::string> s = String(value)) {
      out[*key] = *s;
    }
  });
  return out;
}

std::vector<std::string> FieldReader::StringList(const Field& f) {
  std::vector<std::string> out;
  ForEach(f, [&](const Field& item) {
    if (std::optional<std::string> s = String(item)) out.push_back(*s);
  });
  return out;
}

void FieldReader::ForEach(const Field& f, const std::function<void(const Field&)>& fn) {
  if (!f.present()) return;
  if (!f.is_sequence()) {
    Error(f, absl::StrCat("expected a list, got ", Describe(f)));
    return;
  }
  for (size_t i = 0; i < f.size(); ++i) fn(f[i]);
}

std::optional<std::string> FieldReader::Enum(const Field& f,
                                             const std::vector<std::string>& allowed) {
  std::optional<std::string> s = String(f);
  if (!s) return std::nullopt;
  if (std::find(allowed.begin(), allowed.end(), *s) == allowed.end()) {
    Error(f, absl::StrCat("unknown value \"", *s, "\" (want ", absl::StrJoin(allowed, ", "), ")"));
    return std::nullopt;
  }
  return s;
}

model::ObjectMeta ReadMeta(FieldReader& r, const Field& metadata, bool namespaced,
                           bool dns_label_name) {
  model::ObjectMeta meta;
  if (!metadata.present()) {
    r.Error(metadata, "is required");
    return meta;
  }
  if (std::optional<std::string> name = r.RequiredString(metadata["name"])) {
    meta.name = *name;
    if (dns_label_name ? !IsDnsLabel(meta.name) : !IsDnsSubdomain(meta.name)) {
      r.Error(metadata["name"],
              absl::StrCat("\"", meta.name, "\" is not a valid name (lowercase letters, digits",
                           dns_label_name ? " and '-', at most 63)" : ", '-' and '.')"));
    }
  }
  if (namespaced) {
    meta.namespace_ = r.StringOr(metadata["namespace"], "default");
    if (meta.namespace_.empty()) meta.namespace_ = "default";
    if (!IsDnsLabel(meta.namespace_)) {
      r.Error(metadata["namespace"],
              absl::StrCat("\"", meta.namespace_, "\" is not a valid namespace name"));
    }
  }
  meta.labels = r.StringMap(metadata["labels"]);
  meta.annotations = r.StringMap(metadata["annotations"]);
  return meta;
}

bool IsDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-'; });
}

bool IsDnsSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    if (!IsDnsLabel(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start))) {
      return false;
    }
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

bool IsIanaSvcName(const std::string& s) {
  if (s.empty() || s.size() > 15) return false;
  if (s.front() == '-' || s.back() == '-' || s.find("--") != std::string::npos) return false;
  bool letter = false;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') {
      letter = true;
    } else if (!(c >= '0' && c <= '9') && c != '-') {
      return false;
    }
  }
  return letter;
}

}  // namespace skiff::sources
