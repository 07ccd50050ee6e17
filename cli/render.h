// Table renderings of each agentctl answer (the default `-o table`). Pure functions of the
// API's messages, so they are golden-tested without an agent.
#pragma once

#include <string>
#include <vector>

#include "cli/output.h"
#include "skiff/v1/conntrack.pb.h"
#include "skiff/v1/endpoints.pb.h"
#include "skiff/v1/maps.pb.h"
#include "skiff/v1/services.pb.h"
#include "skiff/v1/status.pb.h"

namespace skiff::cli {

std::string StatusTable(const v1::GetStatusResponse& s);
std::string ServiceListTable(const v1::ListServicesResponse& r);
std::string ServiceDetail(const v1::Service& s);
std::string EndpointTable(const v1::ListEndpointsResponse& r);
std::string MapListTable(const std::vector<v1::MapInfo>& maps);

Table ConntrackTable();
void AddConntrackRow(Table& t, const v1::ConntrackEntry& e);

// Columns are the entry's key fields, then its value fields.
Table MapDumpTable(const v1::MapEntry& first);
void AddMapDumpRow(Table& t, const v1::MapEntry& e);

std::string Duration(int64_t seconds);  // "45s", "3m12s", "2h5m", "3d4h"

}  // namespace skiff::cli
