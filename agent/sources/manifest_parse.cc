#include "agent/sources/manifest_parse.h"

#include <cstring>
#include <exception>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/ascii.h"
#include "agent/sources/manifest_decode.h"
#include "agent/sources/yaml_fields.h"

namespace skiff::sources {
namespace {

struct KindInfo {
  const char* kind;
  const char* api_version;
  model::ObjectKind object_kind;
  bool namespaced;
};

constexpr KindInfo kKinds[] = {
    {"Service", "v1", model::ObjectKind::kService, true},
    {"EndpointSlice", "discovery.k8s.io/v1", model::ObjectKind::kEndpointSlice, true},
    {"Pod", "v1", model::ObjectKind::kPod, true},
    {"Namespace", "v1", model::ObjectKind::kNamespace, false},
    {"Node", "v1", model::ObjectKind::kNode, false},
    {"NetworkPolicy", "networking.k8s.io/v1", model::ObjectKind::kNetworkPolicy, true},
};

const KindInfo* FindKind(const std::string& kind) {
  for (const KindInfo& k : kKinds) {
    if (kind == k.kind) return &k;
  }
  return nullptr;
}

class FileParser {
 public:
  explicit FileParser(absl::string_view path) : file_(path) {}

  void Document(const Field& doc, const std::string& where) {
    const FieldPath::Scope paths;
    if (!doc.present()) return;  // an empty document (e.g. a trailing "---")
    if (!doc.is_map()) {
      AddError(where, "", "expected a Kubernetes object (a mapping with apiVersion and kind)");
      return;
    }
    FieldReader r;
    const std::string kind = r.StringOr(doc["kind"], "");
    if (!r.ok() || kind.empty()) {
      AddError(where, "kind", r.ok() ? "is required" : r.errors().front().message);
      return;
    }
    if (kind == "List") {
      if (!where.empty() && absl::StrContains(where, "items[")) {
        AddError(where, "kind", "a List inside a List is not supported");
        return;
      }
      if (!doc["items"].present()) return;
      if (!doc["items"].is_sequence()) {
        AddError(where, "items", "expected a list of objects");
        return;
      }
      // One pass over the items: indexing a simdjson array walks it from the start, which
      // made a List of 2,000 objects cost 2,000,000 steps.
      const Field items = doc["items"];
      result_.objects.reserve(result_.objects.size() + items.size());
      size_t i = 0;
      items.ForEachItem([&](const Field& item) {
        Document(item.AsRoot(), absl::StrCat(where, " items[", i++, "]"));
      });
      return;
    }
    const KindInfo* info = FindKind(kind);
    if (info == nullptr) {
      ++result_.ignored_documents;
      return;
    }

    // Name the object as soon as its name is readable, so every error says which object.
    std::string object = absl::StrCat(where, " (", kind, ")");
    std::optional<model::ObjectKey> key;
    FieldReader name_reader;
    const std::string name = name_reader.StringOr(doc["metadata"]["name"], "");
    if (!name.empty()) {
      std::string ns;
      if (info->namespaced) ns = name_reader.StringOr(doc["metadata"]["namespace"], "default");
      if (ns.empty() && info->namespaced) ns = "default";
      key = model::ObjectKey{info->object_kind, model::NamespacedName{ns, name}};
      object = key->ToString();
    }

    const std::string api_version = r.StringOr(doc["apiVersion"], "");
    if (api_version != info->api_version) {
      AddError(object, "apiVersion",
               api_version.empty() ? absl::StrCat("is required (", info->api_version, ")")
                                   : absl::StrCat("\"", api_version, "\" is not supported for ",
                                                  kind, " (want ", info->api_version, ")"),
               key);
      return;
    }
    model::Object decoded = DecodeObject(info->object_kind, r, doc);
    if (!r.ok()) {
      for (FieldError& e : r.errors())
        AddError(object, std::move(e.field), std::move(e.message), key);
      return;
    }
    result_.objects.push_back(std::move(decoded));
  }

  void FileError(std::string message) {
    result_.file_failed = true;
    AddError("", "", std::move(message));
  }

  ManifestParseResult Take() { return std::move(result_); }

 private:
  void AddError(std::string object, std::string field, std::string message,
                std::optional<model::ObjectKey> key = std::nullopt) {
    result_.errors.push_back(ManifestError{file_,
                                           std::string(absl::StripLeadingAsciiWhitespace(object)),
                                           std::move(field), std::move(message), std::move(key)});
  }

  std::string file_;
  ManifestParseResult result_;
};

}  // namespace

std::string ManifestError::ToString() const {
  std::vector<std::string> parts;
  for (const std::string* s : {&file, &object, &field, &message}) {
    if (!s->empty()) parts.push_back(*s);
  }
  return absl::StrJoin(parts, ": ");
}

namespace {

bool LooksLikeJson(absl::string_view path, absl::string_view contents) {
  if (!absl::EndsWith(path, ".json")) return false;
  const absl::string_view body = absl::StripLeadingAsciiWhitespace(contents);
  return !body.empty() && (body.front() == '{' || body.front() == '[');
}

// yaml-cpp's message for a file libyaml rejected: the wording manifests have always been
// reported with ("line 2, column 1: end of sequence flow not found"). libyaml's own message
// when yaml-cpp happens to accept the file.
std::string SyntaxError(absl::string_view contents, const std::string& libyaml_error) {
  try {
    (void)YAML::LoadAll(std::string(contents));
  } catch (const YAML::ParserException& e) {
    return absl::StrCat("line ", e.mark.line + 1, ", column ", e.mark.column + 1, ": ", e.msg);
  } catch (const std::exception& e) {
    return e.what();
  }
  return libyaml_error;
}

}  // namespace

namespace {

static_assert(kManifestPadding >= simdjson::SIMDJSON_PADDING);

// One parser (and one padded copy of unpadded text) per thread, reused file after file: fresh
// ones cost a file's worth of page faults each (simdjson's tape is ~10x the text).
struct JsonBuffers {
  simdjson::dom::parser parser;
  std::vector<char> copy;
};
thread_local std::unique_ptr<JsonBuffers> json_buffers;

ManifestParseResult Parse(absl::string_view path, absl::string_view contents, bool padded) {
  FileParser parser(path);
  // JSON manifests go through simdjson, as the Kubernetes API's objects do; a .json file
  // simdjson refuses (e.g. several concatenated objects) is still read as YAML, its superset.
  if (LooksLikeJson(path, contents)) {
    if (!json_buffers) json_buffers = std::make_unique<JsonBuffers>();
    simdjson::dom::parser& json = json_buffers->parser;
    const char* text = contents.data();
    if (!padded) {
      std::vector<char>& copy = json_buffers->copy;
      copy.resize(contents.size() + simdjson::SIMDJSON_PADDING);
      std::memcpy(copy.data(), contents.data(), contents.size());
      text = copy.data();
    }
    simdjson::dom::element root;
    if (json.parse(text, contents.size(), /*realloc_if_needed=*/false).get(root) ==
        simdjson::SUCCESS) {
      parser.Document(Field(root), "document 1");
      return parser.Take();
    }
  }
  YamlStream yaml;
  std::string error;
  if (!yaml.Parse(std::string_view(contents.data(), contents.size()), &error)) {
    parser.FileError(absl::StrCat(SyntaxError(contents, error),
                                  " (the file is skipped; what it defined before stays)"));
    return parser.Take();
  }
  const std::vector<uint32_t>& docs = yaml.documents();
  for (size_t i = 0; i < docs.size(); ++i) {
    parser.Document(Field(yaml, docs[i]), absl::StrCat("document ", i + 1));
  }
  return parser.Take();
}

}  // namespace

ManifestParseResult ParseManifestFile(absl::string_view path, absl::string_view contents) {
  return Parse(path, contents, /*padded=*/false);
}

ManifestParseResult ParsePaddedManifestFile(absl::string_view path, absl::string_view contents) {
  return Parse(path, contents, /*padded=*/true);
}

void ReleaseManifestParseBuffers() { json_buffers.reset(); }

bool IsManifestFileName(absl::string_view name) {
  if (name.empty() || name.front() == '.') return false;
  return absl::EndsWith(name, ".yaml") || absl::EndsWith(name, ".yml") ||
         absl::EndsWith(name, ".json");
}

}  // namespace skiff::sources
