#include "agent/observe/render.h"

#include <cctype>
#include <chrono>

#include "maps/drop_reasons.h"

namespace skiff::observe {

std::string DropReasonLabel(int code) {
  std::string name = SkiffDropReasonName(code);
  const std::string prefix = "SKIFF_DROP_";
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

std::string RenderMetrics(const MetricsInput& in) {
  TextWriter w;
  auto d = [](uint64_t v) { return static_cast<double>(v); };

  w.Family("skiff_build_info", "gauge",
           "Always 1; the labels say which skiff-agent build is running.");
  w.Sample({{"version", in.build.version}, {"compiler", in.build.compiler}}, 1);

  // Datapath counters. Forwarded rows exist for every direction (0 until traffic), drops
  // only for reasons that happened, so the exposition stays small.
  w.Family("skiff_forwarded_packets_total", "counter",
           "Packets the datapath let through (forwarded, translated or untouched), by "
           "program direction.");
  for (const auto& r : in.datapath.traffic)
    if (r.code == 0) w.Sample({{"direction", r.direction}}, d(r.packets));
  w.Family("skiff_forwarded_bytes_total", "counter",
           "Bytes the datapath let through, by program direction.");
  for (const auto& r : in.datapath.traffic)
    if (r.code == 0) w.Sample({{"direction", r.direction}}, d(r.bytes));
  w.Family("skiff_drop_packets_total", "counter",
           "Packets the datapath dropped, by program direction and drop reason.");
  for (const auto& r : in.datapath.traffic)
    if (r.code != 0 && r.packets)
      w.Sample({{"direction", r.direction}, {"reason", DropReasonLabel(r.code)}}, d(r.packets));
  w.Family("skiff_drop_bytes_total", "counter",
           "Bytes of the packets the datapath dropped, by program direction and drop reason.");
  for (const auto& r : in.datapath.traffic)
    if (r.code != 0 && r.packets)
      w.Sample({{"direction", r.direction}, {"reason", DropReasonLabel(r.code)}}, d(r.bytes));

  w.Family("skiff_conntrack_entries", "gauge",
           "Entries in the service conntrack map by address family and L4 protocol, "
           "expired ones not yet garbage-collected included (counted at most every few seconds).");
  for (const auto& c : in.datapath.conntrack)
    w.Sample({{"family", c.family}, {"protocol", c.protocol}}, d(c.entries));

  w.Family("skiff_bpf_map_entries", "gauge",
           "Entries in each pinned hash/LRU/LPM map (counted at most every few seconds).");
  for (const auto& m : in.datapath.maps) w.Sample({{"map", m.name}}, d(m.entries));
  w.Family("skiff_bpf_map_max_entries", "gauge", "Capacity of each pinned hash/LRU/LPM map.");
  for (const auto& m : in.datapath.maps) w.Sample({{"map", m.name}}, m.max_entries);
  w.Family("skiff_bpf_map_pressure", "gauge",
           "Fill level of each pinned hash/LRU/LPM map: entries / max_entries (0 to 1).");
  for (const auto& m : in.datapath.maps)
    w.Sample({{"map", m.name}}, m.max_entries ? d(m.entries) / m.max_entries : 0);
  w.Family("skiff_flow_events_received_total", "counter",
           "Flow events the observer read from the datapath's ring buffer.");
  w.Sample({}, d(in.datapath.flow_events_received));
  w.Family("skiff_flow_events_lost_total", "counter",
           "Flow events the datapath could not emit because the ring buffer was full.");
  w.Sample({}, d(in.datapath.flow_events_lost));
  w.Family("skiff_flow_drop_events_rate_limited_total", "counter",
           "Drop events suppressed by the per-CPU budget (--drop-events-per-sec); the drops "
           "themselves are still counted in skiff_drop_packets_total.");
  w.Sample({}, d(in.datapath.flow_drop_events_rate_limited));
  w.Family("skiff_bpf_map_read_errors_total", "counter",
           "Failed reads of pinned maps while collecting these metrics.");
  w.Sample({}, d(in.datapath.read_errors));

  const AgentSample& a = in.agent;
  w.Family("skiff_source_synced", "gauge",
           "1 once the source has completed its first full read, else 0.");
  for (const auto& [name, synced] : a.sources) w.Sample({{"source", name}}, synced ? 1 : 0);
  w.Family("skiff_ready", "gauge",
           "1 when /readyz answers 200: every source synced and written, programs attached.");
  w.Sample({}, NotReadyReason(a).empty() ? 1 : 0);
  w.Family("skiff_attached_interfaces", "gauge",
           "Interfaces matching --endpoint-ifaces with Skiff's programs attached.");
  w.Sample({}, a.attached_ifaces);
  w.Family("skiff_unattached_interfaces", "gauge",
           "Interfaces matching --endpoint-ifaces whose attach failed (retried on the next "
           "link event).");
  w.Sample({}, static_cast<double>(a.unattached_ifaces.size()));

  w.Family("skiff_sync_latency_seconds", "histogram",
           "Time from a change arriving at a source (the object store's new generation) to "
           "the end of the map writes that apply it.");
  w.WriteHistogram({}, a.sync_latency);
  w.Family("skiff_reconcile_duration_seconds", "histogram",
           "Duration of one reconcile run: desired-state computation and map writes.");
  w.WriteHistogram({}, a.reconcile_duration);
  w.Family("skiff_reconcile_errors_total", "counter",
           "Reconcile runs that ended with an error (retried every 5 s).");
  w.Sample({}, d(a.reconcile_errors_total));
  w.Family("skiff_last_reconcile_success_timestamp_seconds", "gauge",
           "Unix time of the last successful reconcile (0 before the first).");
  w.Sample({}, a.last_updated == std::chrono::system_clock::time_point{}
                   ? 0
                   : std::chrono::duration<double>(a.last_updated.time_since_epoch()).count());

  w.Family("skiff_conntrack_gc_runs_total", "counter",
           "Conntrack GC sweeps over the maps with expiring entries (--ct-gc-interval).");
  w.Sample({}, d(a.ct_gc.runs_total));
  w.Family("skiff_conntrack_gc_deleted_entries_total", "counter",
           "Expired entries the conntrack GC deleted, by map.");
  for (const auto& [map, n] : a.ct_gc.deleted_total) w.Sample({{"map", map}}, d(n));
  w.Family("skiff_conntrack_gc_errors_total", "counter",
           "Conntrack GC sweeps of one map that failed (retried on the next sweep).");
  w.Sample({}, d(a.ct_gc.errors_total));
  w.Family("skiff_conntrack_gc_duration_seconds", "gauge",
           "Duration of the last conntrack GC sweep over every map.");
  w.Sample({}, a.ct_gc.last_duration_seconds);

  if (in.process) {
    const ProcessStats& p = *in.process;
    w.Family("process_cpu_seconds_total", "counter",
             "Total user and system CPU time spent in seconds.");
    w.Sample({}, p.cpu_seconds);
    w.Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    w.Sample({}, p.resident_memory_bytes);
    w.Family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    w.Sample({}, p.virtual_memory_bytes);
    w.Family("process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.");
    w.Sample({}, p.start_time_seconds);
    w.Family("process_open_fds", "gauge", "Number of open file descriptors.");
    w.Sample({}, p.open_fds);
    w.Family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    w.Sample({}, p.max_fds);
  }
  return w.text();
}

}  // namespace skiff::observe
