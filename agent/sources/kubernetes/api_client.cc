#include "agent/sources/kubernetes/api_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>

#include <simdjson.h>

#include "absl/strings/str_cat.h"

namespace skiff::sources::k8s {
namespace {

struct EasyCleanup {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistCleanup {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using EasyHandle = std::unique_ptr<CURL, EasyCleanup>;
using HeaderList = std::unique_ptr<curl_slist, SlistCleanup>;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

curl_blob Blob(const std::string& s) {
  return curl_blob{const_cast<char*>(s.data()), s.size(), CURL_BLOB_COPY};
}

}  // namespace

void ApiClient::MultiCleanup::operator()(void* multi) const {
  curl_multi_cleanup(static_cast<CURLM*>(multi));
}

// One request in flight: the handle, its headers, and what the callbacks accumulate.
struct ApiClient::Transfer {
  EasyHandle easy;
  HeaderList headers;
  std::string url;
  char error[CURL_ERROR_SIZE] = {};
  size_t max_body = 0;
  bool streaming = false;
  const std::function<void(std::string_view)>* on_line = nullptr;
  std::chrono::milliseconds idle_timeout{0};
  std::chrono::steady_clock::time_point last_data;
  StreamResult result;  // result.response.body: the body, or a stream's partial line
  std::string partial;  // streaming: bytes after the last '\n'
  bool too_big = false;

  static size_t Write(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t len = size * n;
    t->last_data = std::chrono::steady_clock::now();
    if (t->result.response.status == 0) {
      curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &t->result.response.status);
    }
    if (!t->streaming || t->result.response.status != 200) {
      if (t->result.response.body.size() + len > t->max_body) {
        t->too_big = true;
        return 0;  // aborts the transfer
      }
      std::string& body = t->result.response.body;
      // Keep simdjson's padding spare, so the list is parsed in place (see DecodeListPage).
      if (body.capacity() < body.size() + len + simdjson::SIMDJSON_PADDING) {
        body.reserve(std::max(body.capacity() * 2, body.size() + len + simdjson::SIMDJSON_PADDING));
      }
      body.append(data, len);
      return len;
    }
    // Split into lines without copying complete lines that arrive whole.
    std::string_view chunk(data, len);
    while (!chunk.empty()) {
      const size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        if (t->partial.size() + chunk.size() > t->max_body) {
          t->too_big = true;
          return 0;
        }
        t->partial.append(chunk);
        break;
      }
      if (t->partial.empty()) {
        (*t->on_line)(chunk.substr(0, nl));
      } else {
        t->partial.append(chunk.substr(0, nl));
        (*t->on_line)(t->partial);
        t->partial.clear();
      }
      ++t->result.lines;
      chunk.remove_prefix(nl + 1);
    }
    return len;
  }
};

ApiClient::ApiClient(std::shared_ptr<const ClusterConfig> cluster,
                     std::shared_ptr<BearerToken> token, Options options)
    : cluster_(std::move(cluster)), token_(std::move(token)), options_(options) {
  GlobalInit();
  multi_.reset(curl_multi_init());
}

ApiClient::~ApiClient() = default;

absl::Status ApiClient::Perform(Transfer& t, const std::atomic<bool>& cancel) {
  CURL* easy = t.easy.get();
  if (easy == nullptr || multi_ == nullptr)
    return absl::InternalError("curl initialisation failed");
  CURLM* multi = static_cast<CURLM*>(multi_.get());
  const ClusterConfig& c = *cluster_;

  curl_easy_setopt(easy, CURLOPT_URL, t.url.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t.error);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Transfer::Write);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "skiff-agent");
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!c.ca_pem.empty()) {
    curl_blob ca = Blob(c.ca_pem);
    curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &ca);
  }
  if (!c.client_cert_pem.empty()) {
    curl_blob cert = Blob(c.client_cert_pem);
    curl_blob key = Blob(c.client_key_pem);
    curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &key);
  }
  if (c.insecure_skip_tls_verify) {
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  t.headers.reset(headers);
  absl::StatusOr<std::string> token = token_->Get();
  if (!token.ok()) return token.status();
  if (!token->empty()) {
    // The token must not end up in curl's verbose output or our logs; it only lives here.
    const std::string auth = absl::StrCat("Authorization: Bearer ", *token);
    t.headers.reset(curl_slist_append(t.headers.release(), auth.c_str()));
  }
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t.headers.get());
  if (!t.streaming) {
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
    // Large lists compress ~10x. Watches stay uncompressed: a compressor may hold back events.
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
  }

  t.last_data = std::chrono::steady_clock::now();
  if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
    return absl::InternalError("curl_multi_add_handle failed");
  }
  CURLcode result = CURLE_OK;
  bool done = false;
  absl::Status outcome = absl::OkStatus();
  while (!done) {
    int running = 0;
    if (curl_multi_perform(multi, &running) != CURLM_OK) {
      outcome = absl::InternalError("curl_multi_perform failed");
      break;
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) {
        result = msg->data.result;
        done = true;
      }
    }
    if (done) break;
    if (cancel.load()) {
      t.result.end = StreamEnd::kCancelled;
      outcome = absl::CancelledError(absl::StrCat("GET ", t.url, ": cancelled"));
      break;
    }
    if (t.streaming && std::chrono::steady_clock::now() - t.last_data > t.idle_timeout) {
      t.result.end = StreamEnd::kStalled;
      break;
    }
    curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  if (t.result.response.status == 0) {  // headers only, or a stall right after them
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t.result.response.status);
  }
  curl_multi_remove_handle(multi, easy);
  if (!outcome.ok() || !done) return outcome;
  if (t.too_big) {
    return absl::ResourceExhaustedError(
        absl::StrCat("GET ", t.url, ": response larger than ", options_.max_body_bytes, " bytes"));
  }
  if (result != CURLE_OK) {
    const std::string detail = t.error[0] != 0 ? t.error : curl_easy_strerror(result);
    const std::string msg = absl::StrCat("GET ", t.url, ": ", detail);
    return result == CURLE_OPERATION_TIMEDOUT ? absl::DeadlineExceededError(msg)
                                              : absl::UnavailableError(msg);
  }
  return absl::OkStatus();
}

absl::StatusOr<HttpResponse> ApiClient::Get(const std::string& path_and_query,
                                            const std::atomic<bool>& cancel) {
  Transfer t;
  t.easy.reset(curl_easy_init());
  t.url = Url(path_and_query);
  t.max_body = options_.max_body_bytes;
  if (absl::Status st = Perform(t, cancel); !st.ok()) return st;
  return std::move(t.result.response);
}

absl::StatusOr<StreamResult> ApiClient::Stream(const std::string& path_and_query,
                                               const std::function<void(std::string_view)>& on_line,
                                               std::chrono::milliseconds idle_timeout,
                                               const std::atomic<bool>& cancel) {
  Transfer t;
  t.easy.reset(curl_easy_init());
  t.url = Url(path_and_query);
  t.max_body = options_.max_body_bytes;
  t.streaming = true;
  t.on_line = &on_line;
  t.idle_timeout = idle_timeout;
  absl::Status st = Perform(t, cancel);
  t.result.discarded_bytes = t.partial.size();
  if (!st.ok()) return st;
  return std::move(t.result);
}

std::string QueryEscape(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char ch : value) {
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back('%');
      out.push_back(kHex[ch >> 4]);
      out.push_back(kHex[ch & 15]);
    }
  }
  return out;
}

}  // namespace skiff::sources::k8s
