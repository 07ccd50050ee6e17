// Kubernetes manifest documents (already parsed YAML/JSON) -> typed model objects, applying
// the API server's defaults and its validation rules for the fields Skiff reads. Each decoder
// records field errors in the reader; the caller rejects the object when there are any.
#pragma once

#include "agent/model/objects.h"
#include "agent/sources/yaml_fields.h"

namespace skiff::sources {

model::Service DecodeService(FieldReader& r, const Field& doc);
model::EndpointSlice DecodeEndpointSlice(FieldReader& r, const Field& doc);
model::Pod DecodePod(FieldReader& r, const Field& doc);
model::Namespace DecodeNamespace(FieldReader& r, const Field& doc);
model::Node DecodeNode(FieldReader& r, const Field& doc);
model::NetworkPolicy DecodeNetworkPolicy(FieldReader& r, const Field& doc);

// The decoder for `kind`; shared by the manifest and the Kubernetes API sources.
model::Object DecodeObject(model::ObjectKind kind, FieldReader& r, const Field& doc);

}  // namespace skiff::sources
