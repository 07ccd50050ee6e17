// HTTP(S) GETs and streaming watches against the Kubernetes API server, over libcurl.
//
// Threads: one ApiClient per thread (each reflector owns one); the ClusterConfig and the
// BearerToken are shared and immutable / thread-safe. Every transfer runs in a curl multi
// loop that wakes at least every 100 ms, so a cancel flag, an idle deadline and a total
// deadline are honoured promptly, and the multi handle's connection cache keeps the
// connection to the API server open between a list's pages and the watch that follows.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/sources/kubernetes/cluster_config.h"

namespace skiff::sources::k8s {

struct HttpResponse {
  long status = 0;
  std::string body;  // for a watch: the body only when status != 200 (a Status object)
};

enum class StreamEnd {
  kClosed,     // the server ended the response (timeoutSeconds, or it went away cleanly)
  kStalled,    // nothing arrived for idle_timeout
  kCancelled,  // the cancel flag was set
};

struct StreamResult {
  HttpResponse response;
  StreamEnd end = StreamEnd::kClosed;
  size_t lines = 0;
  size_t discarded_bytes = 0;  // an unterminated last line (connection cut mid-event)
};

class ApiClient {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds request_timeout{60000};  // a GET (a list page) as a whole
    size_t max_body_bytes = size_t{1} << 30;           // a bigger response is an error
  };

  ApiClient(std::shared_ptr<const ClusterConfig> cluster, std::shared_ptr<BearerToken> token,
            Options options);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // GET server+path_and_query. Any HTTP status is a response; transport failures (refused,
  // TLS, timeout) are Unavailable/DeadlineExceeded errors naming the URL; a cancel is
  // Cancelled.
  absl::StatusOr<HttpResponse> Get(const std::string& path_and_query,
                                   const std::atomic<bool>& cancel);

  // GET a streaming response and call on_line for each complete '\n'-terminated line of a
  // 200 response, as it arrives. Transport errors after the stream began (a dropped
  // connection) are Unavailable errors; the lines delivered before still count.
  absl::StatusOr<StreamResult> Stream(const std::string& path_and_query,
                                      const std::function<void(std::string_view)>& on_line,
                                      std::chrono::milliseconds idle_timeout,
                                      const std::atomic<bool>& cancel);

  std::string Url(const std::string& path_and_query) const {
    return cluster_->server + path_and_query;
  }
  const ClusterConfig& cluster() const { return *cluster_; }

 private:
  struct Transfer;
  absl::Status Perform(Transfer& t, const std::atomic<bool>& cancel);

  std::shared_ptr<const ClusterConfig> cluster_;
  std::shared_ptr<BearerToken> token_;
  Options options_;
  struct MultiCleanup {
    void operator()(void* multi) const;  // curl_multi_cleanup
  };
  std::unique_ptr<void, MultiCleanup> multi_;  // CURLM* (curl.h stays out of this header)
};

// Percent-encodes a query parameter value (RFC 3986 unreserved characters pass).
std::string QueryEscape(std::string_view value);

}  // namespace skiff::sources::k8s
