#include "agent/observe/exposition.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace skiff::observe {

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Counters are integers far more often than not; print them without an exponent up to
  // 2^53, where doubles stop being exact.
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  // Shortest form that reads back to the same double.
  char buf[40];
  for (int prec = 1; prec <= 17; prec++) {
    std::snprintf(buf, sizeof(buf), "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::Observe(double v) {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);  // first bound >= v
  buckets_[it - bounds_.begin()]++;
  count_++;
  sum_ += v;
}

std::vector<uint64_t> Histogram::cumulative() const {
  std::vector<uint64_t> out(bounds_.size());
  uint64_t acc = 0;
  for (size_t i = 0; i < bounds_.size(); i++) out[i] = acc += buckets_[i];
  return out;
}

void TextWriter::Family(const std::string& name, const std::string& type, const std::string& help) {
  family_ = name;
  out_ += "# HELP " + name + " " + EscapeHelp(help) + "\n";
  out_ += "# TYPE " + name + " " + type + "\n";
}

void TextWriter::Sample(const Labels& labels, double value, const std::string& suffix) {
  out_ += family_;
  out_ += suffix;
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); i++) {
      if (i) out_ += ',';
      out_ += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += FormatValue(value);
  out_ += '\n';
}

void TextWriter::WriteHistogram(const Labels& labels, const Histogram& h) {
  auto cum = h.cumulative();
  for (size_t i = 0; i < cum.size(); i++) {
    Labels l = labels;
    l.emplace_back("le", FormatValue(h.bounds()[i]));
    Sample(l, static_cast<double>(cum[i]), "_bucket");
  }
  Labels inf = labels;
  inf.emplace_back("le", "+Inf");
  Sample(inf, static_cast<double>(h.count()), "_bucket");
  Sample(labels, h.sum(), "_sum");
  Sample(labels, static_cast<double>(h.count()), "_count");
}

}  // namespace skiff::observe
