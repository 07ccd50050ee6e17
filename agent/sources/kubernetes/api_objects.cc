#include "agent/sources/kubernetes/api_objects.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/sources/manifest_decode.h"

namespace skiff::sources::k8s {
namespace {

using simdjson::dom::element;

std::string StringAt(element e, const char* key) {
  std::string_view s;
  if (e.is_object() && e[key].get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  return "";
}

absl::StatusOr<element> Parse(simdjson::dom::parser& parser, std::string_view text,
                              const std::string& what) {
  element root;
  // parse() copies into a padded buffer when the input lacks simdjson's padding.
  if (auto err = parser.parse(text.data(), text.size()).get(root); err != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": invalid JSON (", simdjson::error_message(err), ")"));
  }
  return root;
}

ApiStatus StatusFrom(element e) {
  ApiStatus st;
  int64_t code = 0;
  if (e["code"].get_int64().get(code) == simdjson::SUCCESS) st.code = static_cast<int32_t>(code);
  st.reason = StringAt(e, "reason");
  st.message = StringAt(e, "message");
  return st;
}

}  // namespace

const std::vector<ApiResource>& AllResources() {
  static const std::vector<ApiResource> kResources = {
      {model::ObjectKind::kNamespace, "namespaces", "/api/v1/namespaces", "v1", false},
      {model::ObjectKind::kNode, "nodes", "/api/v1/nodes", "v1", false},
      {model::ObjectKind::kPod, "pods", "/api/v1/pods", "v1", true},
      {model::ObjectKind::kService, "services", "/api/v1/services", "v1", true},
      {model::ObjectKind::kEndpointSlice, "endpointslices",
       "/apis/discovery.k8s.io/v1/endpointslices", "discovery.k8s.io/v1", true},
      {model::ObjectKind::kNetworkPolicy, "networkpolicies",
       "/apis/networking.k8s.io/v1/networkpolicies", "networking.k8s.io/v1", true},
  };
  return kResources;
}

const ApiResource& ResourceFor(model::ObjectKind kind) {
  for (const ApiResource& r : AllResources()) {
    if (r.kind == kind) return r;
  }
  return AllResources().front();
}

std::string DecodedObject::ErrorText() const {
  std::vector<std::string> parts;
  for (const FieldError& e : errors) {
    parts.push_back(e.field.empty() ? e.message : absl::StrCat(e.field, ": ", e.message));
  }
  return absl::StrCat(key ? key->ToString() : "object without a name", ": ",
                      absl::StrJoin(parts, "; "));
}

DecodedObject DecodeApiObject(const ApiResource& resource, element object) {
  DecodedObject out;
  const FieldPath::Scope paths;
  const Field doc(object);
  FieldReader names;
  const std::string name = names.StringOr(doc["metadata"]["name"], "");
  if (!name.empty()) {
    std::string ns = resource.namespaced ? names.StringOr(doc["metadata"]["namespace"], "") : "";
    if (resource.namespaced && ns.empty()) ns = "default";
    out.key = model::ObjectKey{resource.kind, model::NamespacedName{ns, name}};
  }
  out.resource_version = names.StringOr(doc["metadata"]["resourceVersion"], "");
  if (!doc.is_map()) {
    out.errors.push_back(FieldError{"", "expected an object"});
    return out;
  }
  FieldReader r;
  model::Object decoded = DecodeObject(resource.kind, r, doc);
  if (r.ok()) {
    out.object = std::move(decoded);
  } else {
    out.errors = std::move(r.errors());
  }
  return out;
}

std::string ApiStatus::ToString() const {
  return absl::StrCat(code, " ", reason.empty() ? "" : absl::StrCat(reason, ": "), message);
}

absl::StatusOr<ListPage> DecodeListPage(const ApiResource& resource, simdjson::dom::parser& parser,
                                        const std::string& body) {
  const std::string what = absl::StrCat("list of ", resource.resource);
  element parsed;
  // The std::string overload parses in place when the capacity leaves simdjson's padding: no
  // copy of a list that may be a hundred megabytes.
  if (auto err = parser.parse(body).get(parsed); err != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": invalid JSON (", simdjson::error_message(err), ")"));
  }
  absl::StatusOr<element> root = parsed;
  if (StringAt(*root, "kind") == "Status") {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the server answered with a Status: ", StatusFrom(*root).ToString()));
  }
  ListPage page;
  element meta;
  if ((*root)["metadata"].get(meta) == simdjson::SUCCESS) {
    page.resource_version = StringAt(meta, "resourceVersion");
    page.continue_token = StringAt(meta, "continue");
  }
  if (page.resource_version.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": metadata.resourceVersion is missing"));
  }
  element items;
  if ((*root)["items"].get(items) != simdjson::SUCCESS || items.is_null()) return page;
  simdjson::dom::array array;
  if (items.get_array().get(array) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": items is not a list"));
  }
  page.items.reserve(array.size());
  for (element item : array) page.items.push_back(DecodeApiObject(resource, item));
  return page;
}

std::optional<ApiStatus> DecodeStatus(simdjson::dom::parser& parser, std::string_view body) {
  absl::StatusOr<element> root = Parse(parser, body, "status");
  if (!root.ok() || StringAt(*root, "kind") != "Status") return std::nullopt;
  return StatusFrom(*root);
}

absl::StatusOr<WatchEvent> DecodeWatchEvent(const ApiResource& resource,
                                            simdjson::dom::parser& parser, std::string_view line) {
  const std::string what = absl::StrCat("watch event for ", resource.resource);
  absl::StatusOr<element> root = Parse(parser, line, what);
  if (!root.ok()) return root.status();
  const std::string type = StringAt(*root, "type");
  element object;
  if ((*root)["object"].get(object) != simdjson::SUCCESS || !object.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": object is missing"));
  }
  WatchEvent ev;
  if (type == "ADDED") {
    ev.type = WatchEventType::kAdded;
  } else if (type == "MODIFIED") {
    ev.type = WatchEventType::kModified;
  } else if (type == "DELETED") {
    ev.type = WatchEventType::kDeleted;
  } else if (type == "BOOKMARK") {
    ev.type = WatchEventType::kBookmark;
    element meta;
    if (object["metadata"].get(meta) == simdjson::SUCCESS) {
      ev.object.resource_version = StringAt(meta, "resourceVersion");
    }
    if (ev.object.resource_version.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": BOOKMARK without metadata.resourceVersion"));
    }
    return ev;
  } else if (type == "ERROR") {
    ev.type = WatchEventType::kError;
    ev.status = StatusFrom(object);
    return ev;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(what, ": unknown type \"", type, "\""));
  }
  ev.object = DecodeApiObject(resource, object);
  return ev;
}

}  // namespace skiff::sources::k8s
