// RefPrefixes: the part of an endpoint's targetRef that its neighbours repeat, stored once and
// named by a small number, so that a TargetRef (endpoint_fields.h) fits the rest in 8 bytes.
//
// The EndpointSlice controller writes a Deployment's pods as <deployment>-<replicaset hash>-
// <5 random characters>: the ten endpoints of a slice share their kind, namespace and all of
// the name but the last 5 characters. An entry holds that (kind, namespace, name prefix)
// triple; its id is below 2^kIdBits.
//
// Entries are reference counted and freed with their last reference (their id is then reused):
// every rollout of a Deployment brings a new replicaset hash, so a pool that only grew (as
// InternedString's) would grow for the agent's whole life. A lookup takes the pool's lock;
// reading an entry, and taking or dropping a reference that is not the last, do not (an id's
// table slot is written before the id is handed out and cleared only after its last reference
// is gone). Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "agent/model/interned.h"

namespace skiff::model::ref_prefixes {

inline constexpr int kIdBits = 25;

struct Fields {
  InternedString kind;
  InternedString namespace_;
  std::string_view prefix;  // into the entry: valid while a reference to it is held
};

// The id of the entry for (kind, namespace_, prefix), made if there is none, with one more
// reference to it; nullopt when 2^kIdBits entries are in use or the prefix is longer than
// 255 bytes (names are at most 253).
std::optional<uint32_t> Acquire(InternedString kind, InternedString namespace_,
                                std::string_view prefix);
// One more reference to an entry the caller holds one to.
void Ref(uint32_t id);
// Drops a reference; the last one frees the entry.
void Unref(uint32_t id);
// The entry's fields (the caller holds a reference).
Fields Get(uint32_t id);

// How many entries are in use (for tests and the memory accounting).
size_t Count();

}  // namespace skiff::model::ref_prefixes
