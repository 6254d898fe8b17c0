// Test certificates made at run time with OpenSSL (no key material in the repository): a CA, a
// server certificate it signed for chosen DNS names, and a self-signed one, written as PEM files
// into a temporary directory that is removed with the object. For engine/tls and transport tests.
#pragma once

#include <string>
#include <vector>

namespace ringmail::tls::testing {

class TestCertificates {
 public:
  // `names`: the server certificate's subjectAltName DNS entries (the first is also its CN).
  explicit TestCertificates(const std::vector<std::string>& names = {"mx.example.test"});
  ~TestCertificates();
  TestCertificates(const TestCertificates&) = delete;
  TestCertificates& operator=(const TestCertificates&) = delete;

  const std::string& dir() const { return dir_; }
  std::string ca_file() const { return dir_ + "/ca.pem"; }              // trust anchor
  std::string cert_file() const { return dir_ + "/server.pem"; }        // CA-signed leaf
  std::string key_file() const { return dir_ + "/server.key"; }
  std::string self_signed_cert_file() const { return dir_ + "/self.pem"; }  // same names, no CA
  std::string self_signed_key_file() const { return dir_ + "/self.key"; }

 private:
  std::string dir_;  // mkdtemp directory
};

}  // namespace ringmail::tls::testing
