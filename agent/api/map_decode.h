// Decodes raw entries of Skiff's pinned maps into named, typed fields (skiff.v1.MapEntry),
// from the structs in maps/*.h — the one definition BPF uses too. Maps this file does not
// know are shown as hex bytes, so `map dump` works on any map.
#pragma once

#include <cstdint>
#include <string>

#include "agent/api/map_reader.h"
#include "skiff/v1/maps.pb.h"

namespace skiff::api {

// value holds one record per CPU for per-CPU maps (see RawEntryFn); they are summed.
void DecodeMapEntry(const MapMeta& meta, Bytes key, Bytes value, v1::MapEntry* out);

// Shared formatting for every API answer and agentctl.
std::string Ipv4String(uint32_t be_addr);   // network byte order in, "10.96.0.10" out
std::string ProtocolString(uint8_t proto);  // "TCP", "UDP", "ICMP", "SCTP" or the number
std::string TcpFlagsString(uint8_t flags);  // "SYN|ACK", "" for none

// Fills a MapInfo from meta plus a count of entries.
void FillMapInfo(const MapMeta& meta, uint64_t entries, v1::MapInfo* out);

}  // namespace skiff::api
