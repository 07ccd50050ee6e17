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

namespace {

struct PathSegment {
  const char* key;
  uint32_t key_len;
  int32_t index;    // >= 0: a list index; else a key or entry
  uint32_t parent;  // FieldPath::node_ of the path without this segment
};

struct PathArena {
  std::vector<PathSegment> segments;
  uint32_t epoch = 1;
  int scopes = 0;
};

PathArena& Arena() {
  thread_local PathArena arena;
  return arena;
}

}  // namespace

FieldPath::Scope::Scope() : mark_(static_cast<uint32_t>(Arena().segments.size())) {
  ++Arena().scopes;
}

FieldPath::Scope::~Scope() {
  PathArena& arena = Arena();
  if (--arena.scopes > 0) {
    // The paths made inside this Scope die with it: a List of 2,000 objects (one file) then
    // keeps one object's segments, not every object's (a growing arena's reallocations and
    // page faults were a quarter of the agent's CPU at 100,000 Services).
    arena.segments.resize(mark_);
    return;
  }
  arena.segments.clear();
  if (arena.segments.capacity() > (1u << 16)) arena.segments.shrink_to_fit();
  ++arena.epoch;
}

FieldPath FieldPath::With(std::string_view key, int32_t index) const {
  PathArena& arena = Arena();
  FieldPath p;
  // A path from an ended Scope starts over rather than pointing at another path's segments.
  const uint32_t parent = epoch_ == arena.epoch ? node_ : 0;
  arena.segments.push_back(
      PathSegment{key.data(), static_cast<uint32_t>(key.size()), index, parent});
  p.node_ = static_cast<uint32_t>(arena.segments.size());
  p.epoch_ = arena.epoch;
  return p;
}

std::string FieldPath::ToString() const {
  const PathArena& arena = Arena();
  if (node_ == 0) return "";
  if (epoch_ != arena.epoch || node_ > arena.segments.size()) return "(field path unavailable)";
  std::vector<const PathSegment*> chain;
  for (uint32_t n = node_; n != 0; n = arena.segments[n - 1].parent) {
    chain.push_back(&arena.segments[n - 1]);
  }
  std::string out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const PathSegment& s = **it;
    const absl::string_view key(s.key, s.key_len);
    if (s.index >= 0) {
      absl::StrAppend(&out, "[", s.index, "]");
    } else if (s.index == kEntry) {
      absl::StrAppend(&out, "[", key, "]");
    } else {
      absl::StrAppend(&out, out.empty() ? "" : ".", key);
    }
  }
  return out;
}

Field Field::Child(const YamlStream* yaml, uint32_t node, FieldPath path) const {
  Field f(*yaml, node);
  f.path_ = std::move(path);
  return f;
}

Field Field::Child(simdjson::dom::element json, FieldPath path) const {
  Field f(json);
  f.path_ = std::move(path);
  return f;
}

bool Field::present() const {
  if (const YamlNode* n = yaml()) return n->kind != YamlNode::Kind::kNull;
  if (const simdjson::dom::element* j = json()) return !j->is_null();
  return false;
}

bool Field::is_map() const {
  if (const YamlNode* n = yaml()) return n->kind == YamlNode::Kind::kMap;
  if (const simdjson::dom::element* j = json()) return j->is_object();
  return false;
}

bool Field::is_sequence() const {
  if (const YamlNode* n = yaml()) return n->kind == YamlNode::Kind::kSeq;
  if (const simdjson::dom::element* j = json()) return j->is_array();
  return false;
}

bool Field::is_scalar() const {
  if (const YamlNode* n = yaml()) return n->kind == YamlNode::Kind::kScalar;
  if (const simdjson::dom::element* j = json()) {
    return !j->is_null() && !j->is_object() && !j->is_array();
  }
  return false;
}

bool Field::is_quoted() const {
  if (const YamlNode* n = yaml()) return n->kind == YamlNode::Kind::kScalar && n->quoted;
  if (const simdjson::dom::element* j = json()) return j->is_string();
  return false;
}

std::optional<std::string_view> Field::scalar_view() const {
  if (const YamlNode* n = yaml()) {
    if (n->kind == YamlNode::Kind::kScalar) return std::string_view(n->text);
    return std::nullopt;
  }
  if (const simdjson::dom::element* j = json()) {
    std::string_view s;
    if (j->get_string().get(s) == simdjson::SUCCESS) return s;
  }
  return std::nullopt;
}

std::optional<int64_t> Field::json_int() const {
  const simdjson::dom::element* j = json();
  if (j == nullptr) return std::nullopt;
  if (j->type() == JsonType::INT64) return j->get_int64().value_unsafe();
  return std::nullopt;
}

std::string Field::scalar() const {
  if (!is_scalar()) return "";
  if (std::optional<std::string_view> v = scalar_view()) return std::string(*v);
  const simdjson::dom::element& j = *json();
  switch (j.type()) {
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

Field Field::operator[](std::string_view key) const {
  if (const simdjson::dom::element* j = json()) {
    simdjson::dom::element child;
    if (j->is_object() && j->get_object().value_unsafe().at_key(key).get(child) == 0) {
      return Child(child, path_.Key(key));
    }
  } else if (const YamlNode* n = yaml(); n != nullptr && n->kind == YamlNode::Kind::kMap) {
    // The first entry with that key, as yaml-cpp's lookup did.
    for (size_t i = 0; i + 1 < n->children.size(); i += 2) {
      const YamlNode& k = yaml_->node(n->children[i]);
      if (k.kind == YamlNode::Kind::kScalar && k.text == key) {
        return Child(yaml_, n->children[i + 1], path_.Key(key));
      }
    }
  }
  Field absent;
  absent.path_ = path_.Key(key);
  return absent;
}

size_t Field::size() const {
  if (!is_sequence()) return 0;
  if (const simdjson::dom::element* j = json()) return j->get_array().value_unsafe().size();
  return yaml()->children.size();
}

Field Field::operator[](size_t index) const {
  if (const simdjson::dom::element* j = json()) {
    simdjson::dom::element child;
    if (j->is_array() && j->get_array().value_unsafe().at(index).get(child) == 0) {
      return Child(child, path_.Index(index));
    }
  } else if (const YamlNode* n = yaml();
             n != nullptr && n->kind == YamlNode::Kind::kSeq && index < n->children.size()) {
    return Child(yaml_, n->children[index], path_.Index(index));
  }
  Field absent;
  absent.path_ = path_.Index(index);
  return absent;
}

void Field::ForEachItem(absl::FunctionRef<void(const Field&)> fn) const {
  if (const simdjson::dom::element* j = json()) {
    if (!j->is_array()) return;
    size_t i = 0;
    const simdjson::dom::array array = j->get_array().value_unsafe();
    for (simdjson::dom::element item : array) {
      fn(Child(item, path_.Index(i++)));
    }
    return;
  }
  const YamlNode* n = yaml();
  if (n == nullptr || n->kind != YamlNode::Kind::kSeq) return;
  for (size_t i = 0; i < n->children.size(); ++i) fn(Child(yaml_, n->children[i], path_.Index(i)));
}

void Field::ForEachEntry(
    absl::FunctionRef<void(std::optional<std::string_view>, const Field&)> fn) const {
  if (!is_map()) return;
  if (const simdjson::dom::element* j = json()) {
    // A copy: value_unsafe() on the temporary result would dangle in a range-for.
    const simdjson::dom::object object = j->get_object().value_unsafe();
    for (simdjson::dom::key_value_pair kv : object) {
      fn(kv.key, Child(kv.value, path_.Entry(kv.key)));
    }
    return;
  }
  const YamlNode& n = *yaml();
  for (size_t i = 0; i + 1 < n.children.size(); i += 2) {
    const YamlNode& k = yaml_->node(n.children[i]);
    const uint32_t value = n.children[i + 1];
    if (k.kind != YamlNode::Kind::kScalar) {
      fn(std::nullopt, Child(yaml_, value, path_));
      continue;
    }
    fn(std::string_view(k.text), Child(yaml_, value, path_.Entry(k.text)));
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
  if (std::optional<int64_t> v = f.json_int()) return v;
  if (f.is_scalar()) {
    const std::string s = f.scalar();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (!s.empty() && ec == std::errc() && end == s.data() + s.size()) return v;
  }
  Error(f, absl::StrCat("expected an integer, got ", Describe(f)));
  return std::nullopt;
}

std::optional<bool> FieldReader::Bool(const Field& f) {
  if (!f.present()) return std::nullopt;
  if (const simdjson::dom::element* j = f.json_element(); j != nullptr && j->is_bool()) {
    return j->get_bool().value_unsafe();
  }
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
  if (std::optional<std::string_view> v = f.scalar_view()) {
    if (*v == "TCP") return model::Protocol::kTcp;
    if (*v == "UDP") return model::Protocol::kUdp;
    if (*v == "SCTP") return model::Protocol::kSctp;
  }
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
  if (f.json_int()) {
    std::optional<uint16_t> port = Port(f);
    if (!port) return std::nullopt;
    return model::IntOrString{int32_t{*port}};
  }
  if (f.is_scalar() && !f.is_quoted()) {
    const std::string s = f.scalar();
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

namespace {

// Calls keep(key, value) for each well-formed entry of a string mapping; records errors for the
// rest. A null value is read as "" (kubectl does the same for labels written as `key:`).
template <typename Keep>
void ReadStringMap(FieldReader& r, const Field& f, Keep&& keep) {
  if (!f.present()) return;
  if (!f.is_map()) {
    r.Error(f, absl::StrCat("expected a mapping, got ", Describe(f)));
    return;
  }
  f.ForEachEntry([&](std::optional<std::string_view> key, const Field& value) {
    if (!key) {
      r.Error(f, "keys must be strings");
      return;
    }
    if (!value.present()) {
      keep(*key, std::string_view());
    } else if (std::optional<std::string_view> v = value.scalar_view()) {
      keep(*key, *v);
    } else if (std::optional<std::string> s = r.String(value)) {
      keep(*key, std::string_view(*s));
    }
  });
}

}  // namespace

model::Labels FieldReader::StringMap(const Field& f) {
  model::Labels out;
  // A later duplicate key replaces an earlier one, as the decoders always did.
  ReadStringMap(*this, f, [&](std::string_view key, std::string_view value) {
    out.insert_or_assign(key, std::string(value));
  });
  return out;
}

void FieldReader::CheckStringMap(const Field& f) {
  ReadStringMap(*this, f, [](std::string_view, std::string_view) {});
}

std::vector<std::string> FieldReader::StringList(const Field& f) {
  std::vector<std::string> out;
  ForEach(f, [&](const Field& item) {
    if (std::optional<std::string> s = String(item)) out.push_back(std::move(*s));
  });
  return out;
}

void FieldReader::ForEach(const Field& f, absl::FunctionRef<void(const Field&)> fn) {
  if (!f.present()) return;
  if (!f.is_sequence()) {
    Error(f, absl::StrCat("expected a list, got ", Describe(f)));
    return;
  }
  f.ForEachItem(fn);
}

std::optional<std::string> FieldReader::Enum(const Field& f,
                                             std::initializer_list<std::string_view> allowed) {
  if (std::optional<std::string_view> v = f.scalar_view()) {
    for (std::string_view a : allowed) {
      if (*v == a) return std::string(a);
    }
  }
  std::optional<std::string> s = String(f);
  if (!s) return std::nullopt;
  if (std::find(allowed.begin(), allowed.end(), std::string_view(*s)) == allowed.end()) {
    std::string want;
    for (std::string_view a : allowed) {
      absl::StrAppend(&want, want.empty() ? "" : ", ", absl::string_view(a.data(), a.size()));
    }
    Error(f, absl::StrCat("unknown value \"", *s, "\" (want ", want, ")"));
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
    std::string ns = r.StringOr(metadata["namespace"], "default");
    if (ns.empty()) ns = "default";
    if (!IsDnsLabel(ns)) {
      r.Error(metadata["namespace"], absl::StrCat("\"", ns, "\" is not a valid namespace name"));
    } else {
      meta.namespace_ = ns;  // interned (objects.h) only once valid
    }
  }
  meta.labels = r.StringMap(metadata["labels"]);
  r.CheckStringMap(metadata["annotations"]);
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
