// Tests of the AUTH credentials file (format, permissions, verification), SHA-512-crypt against
// the specification's vectors and `openssl passwd -6`, and the listener's start-up checks of
// --tls-cert/--tls-key/--require-tls/--auth-file (with a certificate made here, in a temp dir).
#include "engine/server/credentials.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/server/listener_security.h"

namespace ringmail::engine {
namespace {

namespace fs = std::filesystem;

// `openssl passwd -6 -salt saltsalt hello`
const std::string kHelloHash =
    "$6$saltsalt$YTeBOLnmm3CoeJTzBuijUEtOEWCqrw/nQ8/AeMmON4LGp3k0ZiMjC1OdqzWFUAfDQBvYkOch9BWtQTBcZ1E/p0";

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "ringmail-cred-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name, const std::string& text, mode_t mode) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;  // the directory, removed with its files
};

TEST(Sha512Crypt, SpecificationAndOpensslVectors) {
  struct Case {
    const char* password;
    const char* setting;
    const char* expected;
  };
  const Case cases[] = {
      {"Hello world!", "$6$saltstring",
       "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
      {"Hello world!", "$6$rounds=10000$saltstringsaltstring",
       "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/"
       "YTBmSK6H9qs/y3RnOaw5v."},
      {"This is just a test", "$6$rounds=5000$toolongsaltstring",
       "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/"
       "e1JSbq3y6JMxxl8audkUEm0"},
      {"the minimum number is still observed", "$6$rounds=10$roundstoolow",
       "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
      {"hello", kHelloHash.c_str(), kHelloHash.c_str()},  // a full hash as the setting reproduces itself
      {"", "$6$", "$6$$/chiBau24cE26QQVW3IfIe68Xu5.JQ4E8Ie7lcRLwqxO5cxGuBhqF2HmTL.zWJ9zjChg3yJYFXeGBQ2y3Ba1d1"},
  };
  for (const auto& c : cases) {
    auto h = sha512_crypt(c.password, c.setting);
    ASSERT_TRUE(h.ok()) << c.setting;
    EXPECT_EQ(*h, c.expected) << c.setting;
  }
  // Long passwords (over one 64-byte block) take the other branches of steps 9-16.
  auto long_pw = sha512_crypt(std::string(200, 'a'), "$6$x");
  ASSERT_TRUE(long_pw.ok());
  EXPECT_EQ(*long_pw,
            "$6$x$O7igG6oA24wqdGY.fWyF5whCajEwFcrCMyOnVF5Afn1yQ33U9zQNZLxd.3FhRJ7SaqLK7jWL8sjUXPqB04sZm1");
  EXPECT_FALSE(sha512_crypt("x", "$5$abc").ok());
  EXPECT_FALSE(sha512_crypt("x", "$6$rounds=abc$salt").ok());
}

TEST(CredentialStore, ParsesAndVerifies) {
  auto store = CredentialStore::parse("# submission users\n\nalice:" + kHelloHash + "\r\nbob@example.com:" +
                                          *sha512_crypt("pw2", "$6$rounds=1000$s2") + "\n",
                                      "creds");
  ASSERT_TRUE(store.ok()) << store.error().message();
  EXPECT_EQ((*store)->size(), 2u);
  EXPECT_TRUE((*store)->verify("alice", "hello"));
  EXPECT_FALSE((*store)->verify("alice", "hello "));
  EXPECT_FALSE((*store)->verify("alice", "Hello"));
  EXPECT_FALSE((*store)->verify("Alice", "hello"));
  EXPECT_TRUE((*store)->verify("bob@example.com", "pw2"));
  EXPECT_FALSE((*store)->verify("bob@example.com", "hello"));
  EXPECT_FALSE((*store)->verify("carol", "hello"));
  EXPECT_FALSE((*store)->verify("", ""));
}

TEST(CredentialStore, BadLinesNameFileAndLine) {
  struct Case {
    std::string text;
    std::string error;  // a part of the message
  };
  const Case cases[] = {
      {"alice:secret\n", "creds:1: user alice: the password must be a SHA-512-crypt hash"},
      {"# c\nalice\n", "creds:2: expected user:$6$salt$hash"},
      {"al ice:" + kHelloHash + "\n", "creds:1: bad user name"},
      {":" + kHelloHash + "\n", "creds:1: bad user name"},
      {"alice:" + kHelloHash + "\nalice:" + kHelloHash + "\n", "creds:2: user alice appears twice"},
      {"alice:" + kHelloHash.substr(0, kHelloHash.size() - 1) + "\n", "creds:1: user alice: the password must be"},
      {"alice:" + kHelloHash + ":extra\n", "creds:1: user alice: the password must be"},
      {"alice:$1$abc$def\n", "creds:1: user alice: the password must be"},
  };
  for (const auto& c : cases) {
    auto store = CredentialStore::parse(c.text, "creds");
    ASSERT_FALSE(store.ok()) << c.text;
    EXPECT_NE(store.error().message().find(c.error), std::string::npos) << store.error().message();
    EXPECT_EQ(store.error().message().find("secret"), std::string::npos);  // a plain password is not echoed
  }
}

TEST(CredentialStore, FilePermissionsAreEnforced) {
  TempDir dir;
  std::string text = "alice:" + kHelloHash + "\n";
  auto ok = CredentialStore::load(dir.file("ok", text, 0600));
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_TRUE((*ok)->verify("alice", "hello"));
  EXPECT_TRUE(CredentialStore::load(dir.file("ro", text, 0400)).ok());
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602}) {
    auto bad = CredentialStore::load(dir.file("bad", text, mode));
    ASSERT_FALSE(bad.ok()) << std::oct << mode;
    EXPECT_NE(bad.error().message().find("accessible by group or others"), std::string::npos)
        << bad.error().message();
    EXPECT_NE(bad.error().message().find("chmod 600"), std::string::npos);
  }
  auto missing = CredentialStore::load(dir.path() + "/none");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("No such file"), std::string::npos);
  EXPECT_FALSE(CredentialStore::load(dir.path()).ok());  // a directory
}

// A self-signed P-256 certificate and its key, written as PEM files.
void write_test_certificate(const std::string& cert_path, const std::string& key_path) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  X509* x = X509_new();
  ASSERT_NE(x, nullptr);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("mx.test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  ASSERT_GT(X509_sign(x, key, EVP_sha256()), 0);
  FILE* f = std::fopen(cert_path.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
}

TEST(ListenerSecurity, StartUpChecks) {
  TempDir dir;
  std::string cert = dir.path() + "/cert.pem", key = dir.path() + "/key.pem";
  write_test_certificate(cert, key);
  std::string other_cert = dir.path() + "/other.pem", other_key = dir.path() + "/other.key";
  write_test_certificate(other_cert, other_key);
  std::string creds = dir.file("creds", "alice:" + kHelloHash + "\n", 0600);
  std::string open_creds = dir.file("open", "alice:" + kHelloHash + "\n", 0644);
  std::string garbage = dir.file("garbage.pem", "not a certificate\n", 0600);

  auto none = load_listener_security({});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE((*none)->protocol().tls_available);
  EXPECT_FALSE((*none)->protocol().auth_available);

  auto full = load_listener_security({cert, key, true, creds});
  ASSERT_TRUE(full.ok()) << full.error().message();
  smtp::ServerSecurity p = (*full)->protocol();
  EXPECT_TRUE(p.tls_available);
  EXPECT_TRUE(p.require_tls);
  EXPECT_TRUE(p.auth_available);
  EXPECT_TRUE((*full)->credentials->verify("alice", "hello"));
  auto ctx = (*full)->make_tls_context();
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ((*ctx)->role(), tls::Role::kServer);

  struct Case {
    ListenerSecurityOptions options;
    std::string error;  // a part of the message
  };
  const Case cases[] = {
      {{cert, "", false, ""}, "--tls-cert and --tls-key go together"},
      {{"", key, false, ""}, "--tls-cert and --tls-key go together"},
      {{"", "", true, ""}, "--require-tls needs a certificate"},
      {{"", "", false, creds}, "--auth-file needs a certificate"},
      {{garbage, key, false, ""}, "--tls-cert/--tls-key: TLS certificate " + garbage},
      {{cert, garbage, false, ""}, "--tls-cert/--tls-key: TLS key " + garbage},
      {{cert, other_key, false, ""}, "does not match certificate"},
      {{cert, dir.path() + "/missing.pem", false, ""}, "missing.pem"},
      {{cert, key, false, open_creds}, "--auth-file: " + open_creds + ": is accessible by group or others"},
  };
  for (const auto& c : cases) {
    auto r = load_listener_security(c.options);
    ASSERT_FALSE(r.ok()) << c.error;
    EXPECT_NE(r.error().message().find(c.error), std::string::npos) << r.error().message();
  }
}

}  // namespace
}  // namespace ringmail::engine
