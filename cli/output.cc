#include "cli/output.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <ostream>
#include <sstream>

#include "absl/strings/str_split.h"
#include "skiff/v1/maps.pb.h"

namespace skiff::cli {

namespace pb = google::protobuf;

absl::StatusOr<Format> ParseFormat(const std::string& s) {
  if (s == "table" || s.empty()) return Format::kTable;
  if (s == "json") return Format::kJson;
  if (s == "yaml") return Format::kYaml;
  return absl::InvalidArgumentError("-o " + s + ": expected table, json or yaml");
}

namespace {

Json FieldsObject(const pb::RepeatedPtrField<v1::MapField>& fields) {
  Json o = Json::object();
  for (const auto& f : fields) {
    switch (f.value_case()) {
      case v1::MapField::kUint:
        o[f.name()] = f.uint();
        break;
      case v1::MapField::kInt:
        o[f.name()] = f.int_();
        break;
      case v1::MapField::kText:
        o[f.name()] = f.text();
        break;
      default:
        o[f.name()] = nullptr;
    }
  }
  return o;
}

Json Scalar(const pb::Message& m, const pb::FieldDescriptor* f, int i) {
  const pb::Reflection* r = m.GetReflection();
  bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f);
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f);
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f);
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f);
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(m, f, i) : r->GetBool(m, f);
    case pb::FieldDescriptor::CPPTYPE_STRING:
      return rep ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r->GetRepeatedEnum(m, f, i) : r->GetEnum(m, f))->name();
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      return ToJson(rep ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f));
  }
  return nullptr;
}

void EmitYaml(YAML::Emitter& e, const Json& j) {
  if (j.is_object()) {
    if (j.empty()) {
      e << YAML::Flow << YAML::BeginMap << YAML::EndMap;
      return;
    }
    e << YAML::BeginMap;
    for (auto it = j.begin(); it != j.end(); ++it) {
      e << YAML::Key << it.key() << YAML::Value;
      EmitYaml(e, it.value());
    }
    e << YAML::EndMap;
  } else if (j.is_array()) {
    if (j.empty()) {
      e << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
      return;
    }
    e << YAML::BeginSeq;
    for (const auto& x : j) EmitYaml(e, x);
    e << YAML::EndSeq;
  } else if (j.is_string()) {
    // Quote what YAML would otherwise read back as another type ("", "yes", "1.0", ...).
    e << YAML::DoubleQuoted << j.get<std::string>();
  } else if (j.is_boolean()) {
    e << YAML::TrueFalseBool << j.get<bool>();
  } else if (j.is_number_unsigned()) {
    e << j.get<uint64_t>();
  } else if (j.is_number_integer()) {
    e << j.get<int64_t>();
  } else if (j.is_number_float()) {
    e << j.get<double>();
  } else {
    e << YAML::Null;
  }
}

std::string Indent(const std::string& s, int n) {
  std::string pad(n, ' '), out;
  for (auto line : absl::StrSplit(s, '\n')) {
    if (!out.empty()) out += "\n";
    if (!line.empty()) out += pad;
    out.append(line.data(), line.size());
  }
  return out;
}

}  // namespace

Json ToJson(const pb::Message& m) {
  if (auto* e = dynamic_cast<const v1::MapEntry*>(&m)) {
    Json o = Json::object();
    o["key"] = FieldsObject(e->key());
    o["value"] = FieldsObject(e->value());
    return o;
  }
  Json o = Json::object();
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); i++) {
    const pb::FieldDescriptor* f = d->field(i);
    if (f->real_containing_oneof() && !r->HasField(m, f)) continue;
    if (f->is_repeated()) {
      Json a = Json::array();
      for (int k = 0; k < r->FieldSize(m, f); k++) a.push_back(Scalar(m, f, k));
      o[f->name()] = std::move(a);
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !r->HasField(m, f)) {
      o[f->name()] = nullptr;
    } else {
      o[f->name()] = Scalar(m, f, 0);
    }
  }
  return o;
}

std::string ToYaml(const Json& j) {
  YAML::Emitter e;
  EmitYaml(e, j);
  return std::string(e.c_str()) + "\n";
}

std::string Render(const Json& j, Format format) {
  return format == Format::kYaml ? ToYaml(j) : j.dump(2) + "\n";
}

StreamingList::StreamingList(std::ostream& out, Format format, Json head, std::string list_key)
    : out_(out), format_(format), head_(std::move(head)), key_(std::move(list_key)) {}

void StreamingList::Open() {
  if (opened_) return;
  opened_ = true;
  if (format_ == Format::kJson) {
    out_ << "{\n";
    for (auto it = head_.begin(); it != head_.end(); ++it)
      out_ << "  " << Json(it.key()).dump() << ": " << Indent(it.value().dump(2), 2).substr(2)
           << ",\n";
    out_ << "  " << Json(key_).dump() << ": [\n";
  } else {
    if (!head_.empty()) out_ << ToYaml(head_);
    out_ << key_ << ":\n";
  }
}

void StreamingList::Add(const Json& item) {
  Open();
  if (format_ == Format::kJson) {
    if (count_) out_ << ",\n";
    out_ << Indent(item.dump(2), 4);
  } else {
    out_ << Indent(ToYaml(Json::array({item})), 2);
  }
  count_++;
}

void StreamingList::End() {
  if (count_ == 0) {
    Json whole = head_;
    whole[key_] = Json::array();
    out_ << Render(whole, format_);
    return;
  }
  if (format_ == Format::kJson) out_ << "\n  ]\n}\n";
  out_ << std::flush;
}

std::string Table::Render() const {
  std::vector<size_t> w(headers_.size());
  auto cell = [](const std::string& s) { return s.empty() ? std::string("<none>") : s; };
  for (size_t i = 0; i < headers_.size(); i++) w[i] = headers_[i].size();
  for (const auto& r : rows_)
    for (size_t i = 0; i < r.size() && i < w.size(); i++) w[i] = std::max(w[i], cell(r[i]).size());
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& r, bool header) {
    std::string l;
    for (size_t i = 0; i < w.size(); i++) {
      std::string c = i < r.size() ? (header ? r[i] : cell(r[i])) : "";
      l += c;
      if (i + 1 < w.size()) l += std::string(w[i] - c.size() + 3, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out << l << "\n";
  };
  line(headers_, true);
  for (const auto& r : rows_) line(r, false);
  return out.str();
}

}  // namespace skiff::cli
