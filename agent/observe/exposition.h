// Prometheus text exposition format (version 0.0.4): a writer that gets the escaping and the
// HELP/TYPE lines right, and a fixed-bucket histogram. Pure code, no I/O.
//
// Threads: a TextWriter belongs to the thread that renders one scrape. A Histogram is not
// synchronized; its owner guards it (ObserveBoard keeps its histograms under its mutex).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace skiff::observe {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Label values: backslash, double quote and line feed escaped.
std::string EscapeLabelValue(const std::string& v);
// HELP text: backslash and line feed escaped.
std::string EscapeHelp(const std::string& v);
// Go's strconv.FormatFloat(v, 'g', -1, 64) spelling as Prometheus expects: shortest
// round-trip form, "+Inf", "-Inf", "NaN".
std::string FormatValue(double v);

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);  // ascending, +Inf implied
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // counts()[i]: observations <= bounds()[i] (cumulative, as exposed).
  std::vector<uint64_t> cumulative() const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> buckets_;  // per bucket, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0;
};

class TextWriter {
 public:
  // Starts a metric family; every sample until the next Family() belongs to it. Each family
  // must be written once per exposition (the parser rejects a repeated family).
  void Family(const std::string& name, const std::string& type, const std::string& help);
  // A sample of the current family; `suffix` is "" or "_bucket"/"_sum"/"_count".
  void Sample(const Labels& labels, double value, const std::string& suffix = "");
  void WriteHistogram(const Labels& labels, const Histogram& h);
  const std::string& text() const { return out_; }

 private:
  std::string out_;
  std::string family_;
};

}  // namespace skiff::observe
