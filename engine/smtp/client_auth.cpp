// STARTTLS/AUTH helpers of the outbound client. See client_auth.h.
#include "engine/smtp/client_auth.h"

#include "common/strings.h"
#include "engine/smtp/sasl.h"

namespace ringmail::smtp {

namespace {

bool announces(std::string_view announced, std::string_view mechanism) {
  while (!announced.empty()) {
    size_t sp = announced.find(' ');
    std::string_view word = announced.substr(0, sp);
    if (iequals(word, mechanism)) return true;
    announced = sp == std::string_view::npos ? std::string_view{} : announced.substr(sp + 1);
  }
  return false;
}

DeliveryOutcome local_failure(ClientStage stage, int code, std::string_view enhanced, std::string_view text) {
  DeliveryOutcome o;
  o.kind = OutcomeKind::kTryNextHost;
  o.scope = FailureScope::kConnection;
  o.stage = stage;
  o.local = true;
  o.reply.code = code;
  o.reply.enhanced.assign(enhanced);
  o.reply.text.assign(text);
  return o;
}

}  // namespace

std::string_view choose_auth_mechanism(const ClientAuth& auth, std::string_view announced) {
  if (!auth.mechanism.empty()) return announces(announced, auth.mechanism) ? std::string_view(auth.mechanism) : "";
  if (announces(announced, "PLAIN")) return "PLAIN";
  if (announces(announced, "LOGIN")) return "LOGIN";
  return "";
}

void append_auth_plain(const ClientAuth& auth, std::string& out) {
  std::string token;  // authzid (empty) NUL authcid NUL passwd
  token.reserve(auth.username.size() + auth.password.size() + 2);
  token += '\0';
  token += auth.username;
  token += '\0';
  token += auth.password;
  out += "AUTH PLAIN ";
  append_base64(token, out);
  out += "\r\n";
  wipe(token);  // do not leave the secret in freed memory
}

DeliveryOutcome tls_failure_outcome(ClientStage stage, std::string_view what) {
  return local_failure(stage, 454, "4.7.0", what);
}

DeliveryOutcome auth_failure_outcome(ClientStage stage, std::string_view what) {
  return local_failure(stage, 454, "4.7.0", what);
}

}  // namespace ringmail::smtp
