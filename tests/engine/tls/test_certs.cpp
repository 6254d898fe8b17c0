// TestCertificates implementation: P-256 keys, X.509 v3 with subjectAltName, one day of validity.
#include "tests/engine/tls/test_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace ringmail::tls::testing {
namespace {

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificates: ") + what);
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509* make_cert(EVP_PKEY* key, const std::string& cn, const std::vector<std::string>& names, X509* issuer,
                EVP_PKEY* issuer_key, bool is_ca, long serial) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
  X509* iss = issuer ? issuer : cert;
  if (is_ca) {
    add_ext(cert, iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert, iss, NID_basic_constraints, "CA:FALSE");
    std::string san;
    for (const auto& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
    if (!san.empty()) add_ext(cert, iss, NID_subject_alt_name, san);
  }
  check(X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()) > 0, "sign");
  return cert;
}

void write_pem(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  check(f != nullptr, "open");
  if (cert) PEM_write_X509(f, cert);
  if (key) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

}  // namespace

TestCertificates::TestCertificates(const std::vector<std::string>& names) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "ringmail-tls-XXXXXX").string();
  check(mkdtemp(tmpl.data()) != nullptr, "mkdtemp");
  dir_ = tmpl;
  EVP_PKEY* ca_key = EVP_EC_gen("P-256");
  EVP_PKEY* key = EVP_EC_gen("P-256");
  EVP_PKEY* self_key = EVP_EC_gen("P-256");
  check(ca_key && key && self_key, "keygen");
  X509* ca = make_cert(ca_key, "ringmail test CA", {}, nullptr, nullptr, true, 1);
  std::string cn = names.empty() ? "server" : names.front();
  X509* leaf = make_cert(key, cn, names, ca, ca_key, false, 2);
  X509* self = make_cert(self_key, cn, names, nullptr, nullptr, false, 3);
  write_pem(ca_file(), ca, nullptr);
  write_pem(cert_file(), leaf, nullptr);
  write_pem(key_file(), nullptr, key);
  write_pem(self_signed_cert_file(), self, nullptr);
  write_pem(self_signed_key_file(), nullptr, self_key);
  X509_free(ca);
  X509_free(leaf);
  X509_free(self);
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(key);
  EVP_PKEY_free(self_key);
}

TestCertificates::~TestCertificates() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace ringmail::tls::testing
