// The observer's memory: the last N flow events (a bounded ring, --flow-buffer-size), each
// with its wall-clock time and the names the enricher found. Readers take copies; followers
// wait for records newer than the last one they saw.
//
// Threads: Add() is called by the flow reader's thread; Since() and WaitNewer() by gRPC
// threads, concurrently. Everything is guarded by one mutex; waiting happens on a condition
// variable, never while holding the lock for long.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "maps/events.h"

namespace skiff::observe {

struct FlowRecord {
  uint64_t seq = 0;          // assigned by the store, from 1, increasing
  int64_t time_unix_ns = 0;  // wall clock
  skiff_flow_event ev{};
  // Enrichment, "namespace/name" or "" when unknown.
  std::string source_pod;
  std::string destination_pod;  // of the backend (translated) or the packet's destination
  std::string service;          // the frontend's Service
};

class FlowStore {
 public:
  explicit FlowStore(size_t capacity);
  size_t capacity() const { return capacity_; }

  // Appends (assigning seq), evicting the oldest record when full, and wakes followers.
  void Add(FlowRecord r);
  // Copies of the records with seq > after, oldest first.
  std::vector<FlowRecord> Since(uint64_t after) const;
  // Waits up to `timeout` for a record with seq > after; returns whether one exists.
  bool WaitNewer(uint64_t after, std::chrono::milliseconds timeout) const;
  uint64_t last_seq() const;
  size_t size() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<FlowRecord> ring_;
  uint64_t next_seq_ = 1;
};

}  // namespace skiff::observe
