// One manifest file -> typed objects and errors. Pure (no I/O): the caller reads the file, so
// this is unit-tested on strings and fuzzable.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/model/objects.h"

namespace skiff::sources {

struct ManifestError {
  std::string file;    // as passed to ParseManifestFile, e.g. "examples/bad.yaml"
  std::string object;  // "Service default/web", or "document 2 (Service)" when unnamed
  std::string field;   // "spec.ports[0].port"; empty for file- or document-level errors
  std::string message;
  // Set when the object's kind and name were readable: the source then keeps that object's
  // last good version instead of dropping it.
  std::optional<model::ObjectKey> key;

  // "examples/bad.yaml: Service default/web: spec.ports[0].port: 70000 is out of range 1-65535"
  std::string ToString() const;
};

struct ManifestParseResult {
  std::vector<model::Object> objects;  // valid objects, in file order
  std::vector<ManifestError> errors;
  // The file as a whole could not be read as YAML/JSON: none of its documents are known, so
  // everything it defined before must stay in force.
  bool file_failed = false;
  // Documents of kinds Skiff does not use (Deployment, ConfigMap, ...): skipped, not errors.
  size_t ignored_documents = 0;
};

// Accepts multi-document YAML, JSON (a YAML subset), and `kind: List` documents with items.
// An object with any invalid field is left out whole and each bad field reported; the other
// objects of the file are still returned. Never throws.
ManifestParseResult ParseManifestFile(absl::string_view path, absl::string_view contents);
// The same for text followed by at least kManifestPadding readable bytes (a reader's buffer):
// JSON is then parsed in place, not from a padded copy of the file.
inline constexpr size_t kManifestPadding = 64;
ManifestParseResult ParsePaddedManifestFile(absl::string_view path, absl::string_view contents);
// Frees the calling thread's JSON parser and buffers, which are kept from file to file (sized
// for the largest file: ~20 MB for a 1.5 MB List) so a batch of files reuses them.
void ReleaseManifestParseBuffers();

// Whether a directory entry is a manifest the source reads (*.yaml, *.yml, *.json, not hidden).
bool IsManifestFileName(absl::string_view name);

}  // namespace skiff::sources
