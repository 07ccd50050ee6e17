// The Kubernetes API's JSON -> typed model objects. Lists, watch events and Status objects
// are parsed with simdjson and each object is run through the same decoders as manifests
// (manifest_decode.h over a JSON Field), so both sources produce identical objects with the
// same defaults and validation. Only the decoded, typed fields are kept; the JSON buffer is
// the caller's and is released after each page or event.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "absl/status/statusor.h"
#include "agent/model/objects.h"
#include "agent/sources/yaml_fields.h"

namespace skiff::sources::k8s {

// One watched resource: where it lives in the API and what it decodes to.
struct ApiResource {
  model::ObjectKind kind;
  const char* resource;     // "services"
  const char* path;         // "/api/v1/services" (all namespaces)
  const char* api_version;  // "v1"
  bool namespaced;
};

// Services, EndpointSlices, Pods, Namespaces, Nodes, NetworkPolicies.
const std::vector<ApiResource>& AllResources();
const ApiResource& ResourceFor(model::ObjectKind kind);

struct DecodedObject {
  std::optional<model::ObjectKey> key;  // set when metadata.name was readable
  std::string resource_version;         // metadata.resourceVersion
  std::optional<model::Object> object;  // nullopt when any field is invalid (see errors)
  std::vector<FieldError> errors;
  // "Service default/web: spec.ports[0].port: 70000 is out of range 1-65535; ..."
  std::string ErrorText() const;
};

DecodedObject DecodeApiObject(const ApiResource& resource, simdjson::dom::element object);

struct ListPage {
  std::string resource_version;  // metadata.resourceVersion: where the watch starts
  std::string continue_token;    // metadata.continue: "" on the last page
  std::vector<DecodedObject> items;
};

// A Status object (kind: Status): what the API returns with errors and in ERROR events.
struct ApiStatus {
  int32_t code = 0;
  std::string reason;  // "Expired", "Unauthorized", ...
  std::string message;
  std::string ToString() const;  // "410 Expired: too old resource version: 1 (5)"
};

// A list response body (e.g. ServiceList). Errors name the resource. A body with
// SIMDJSON_PADDING spare capacity is parsed in place; any other is copied first.
absl::StatusOr<ListPage> DecodeListPage(const ApiResource& resource, simdjson::dom::parser& parser,
                                        const std::string& body);

// A Status body, if the body is one.
std::optional<ApiStatus> DecodeStatus(simdjson::dom::parser& parser, std::string_view body);

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  DecodedObject object;  // BOOKMARK: only resource_version; ERROR: unused
  ApiStatus status;      // ERROR only
};

// One line of a watch stream: {"type":"ADDED","object":{...}}. A line that is not such an
// event is an InvalidArgument error describing it.
absl::StatusOr<WatchEvent> DecodeWatchEvent(const ApiResource& resource,
                                            simdjson::dom::parser& parser, std::string_view line);

}  // namespace skiff::sources::k8s
