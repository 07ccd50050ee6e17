#include "tests/k8s/test_pki.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"

namespace skiff::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = absl::StrCat(base ? base : "/tmp", "/skiff-k8s-test-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& contents) const {
  const std::string p = absl::StrCat(path_, "/", name);
  std::ofstream(p, std::ios::binary) << contents;
  return p;
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::StatusOr<TestPki> MakeTestPki(const std::string& dir) {
  TestPki p{dir + "/ca.crt", dir + "/server.crt", dir + "/server.key", dir + "/client.crt",
            dir + "/client.key"};
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  std::ofstream(dir + "/server.ext") << "subjectAltName=IP:127.0.0.1\n";
  std::ofstream(dir + "/client.ext") << "extendedKeyUsage=clientAuth\n";
  const std::string q = " 2>>" + dir + "/openssl.log";
  const std::string cmds[] = {
      absl::StrCat("openssl req -x509 ", key, " -keyout ", dir, "/ca.key -out ", p.ca_cert,
                   " -days 1 -subj /CN=skiff-test-ca", q),
      absl::StrCat("openssl req ", key, " -keyout ", p.server_key, " -out ", dir,
                   "/server.csr -subj /CN=127.0.0.1", q),
      absl::StrCat("openssl x509 -req -in ", dir, "/server.csr -CA ", p.ca_cert, " -CAkey ", dir,
                   "/ca.key -CAcreateserial -out ", p.server_cert, " -days 1 -extfile ", dir,
                   "/server.ext", q),
      absl::StrCat("openssl req ", key, " -keyout ", p.client_key, " -out ", dir,
                   "/client.csr -subj /CN=skiff-agent", q),
      absl::StrCat("openssl x509 -req -in ", dir, "/client.csr -CA ", p.ca_cert, " -CAkey ", dir,
                   "/ca.key -CAcreateserial -out ", p.client_cert, " -days 1 -extfile ", dir,
                   "/client.ext", q),
  };
  for (const std::string& cmd : cmds) {
    if (std::system(cmd.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("failed: ", cmd));
    }
  }
  return p;
}

}  // namespace skiff::testing
