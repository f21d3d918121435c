#!/usr/bin/env bash
# A client of the gateway with openssl and curl only (and bash, sed, tr, od): for agencies whose
# systems are not on Node. It speaks the README's wire interface:
#
#   gateway-call.sh jwk KEY.pem
#       prints the public JWK of an ES256 (P-256) private key in PEM, with its RFC 7638 thumbprint
#       as `kid`: what the agency registers with the gateway (`clients[].keys.jwks`).
#
#   GATEWAY_URL=… GATEWAY_ID=… CLIENT_ID=… KEY=KEY.pem SERVICE=population.identity \
#   PURPOSE=PUBLIC_SERVICE_PREFILL BODY='{"personalId":"…"}' [CASE_ID=…] [USER_ID=…] [CONSENT=…] \
#   gateway-call.sh call
#       mints a per-request client assertion bound to BODY (`body_sha256`), POSTs BODY to
#       /services/SERVICE/v1 (VERSION=…), and on a 200 verifies `X-Gateway-Signature` (the detached
#       JWS over the exact answer bytes, its `request_sha256` against BODY, its `request_id` against
#       `X-Request-Id`) with the gateway's key from /.well-known/jwks.json. Prints the answer only once
#       it is verified.
#
# Exit codes: 0 a verified answer; 1 the gateway refused the request (its problem document is
# printed on stderr); 3 an answer that does not verify (nothing is printed on stdout); 64 used wrongly.
#
# ES256 signatures in JOSE are the raw 64 bytes r||s (RFC 7518 §3.4), not the DER SEQUENCE that
# `openssl dgst -sign` writes and `-verify` reads: this script converts between the two both ways.
# A DER signature sent as is gets AUTH_INVALID.
set -euo pipefail

die() { echo "gateway-call: $2" >&2; exit "$1"; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
unb64url() {
  local s
  s=$(tr -- '-_' '+/')
  case $(( ${#s} % 4 )) in 2) s="$s==" ;; 3) s="$s=" ;; esac
  printf '%s' "$s" | openssl base64 -d -A
}
tohex() { od -An -v -tx1 | tr -d ' \n'; }
fromhex() { printf '%b' "$(sed 's/\(..\)/\\x\1/g')"; }
pad64() { local h=$1; while [ ${#h} -lt 64 ]; do h="0$h"; done; printf '%s' "${h: -64}"; }
# A member of a flat JSON object, as text (enough for a JWK, a JWS header or a JWKS entry).
member() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The public JWK of a P-256 key: the last 64 bytes of its SubjectPublicKeyInfo are x||y.
public_jwk() {
  local spki x y
  spki=$(openssl pkey -in "$1" -pubout -outform DER | tohex)
  [ ${#spki} -eq 182 ] || die 64 "$1 is not a P-256 (prime256v1) key"
  x=$(printf '%s' "${spki:54:64}" | fromhex | b64url)
  y=$(printf '%s' "${spki:118:64}" | fromhex | b64url)
  # RFC 7638: the required members in lexicographic order, no whitespace.
  local kid
  kid=$(printf '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' "$x" "$y" | openssl dgst -sha256 -binary | b64url)
  printf '{"kty":"EC","crv":"P-256","x":"%s","y":"%s","kid":"%s","alg":"ES256","use":"sig"}\n' "$x" "$y" "$kid"
}

# ES256 over stdin with a PEM key, as the raw r||s JOSE wants, base64url.
sign_es256() {
  openssl dgst -sha256 -sign "$1" -out "$work/sig.der"
  local r s
  { read -r r; read -r s; } < <(openssl asn1parse -inform DER -in "$work/sig.der" | sed -n 's/.*INTEGER *://p')
  printf '%s%s' "$(pad64 "$r")" "$(pad64 "$s")" | fromhex | b64url
}

# Verifies a base64url raw r||s ES256 signature over the file $2 with the PEM public key $1.
verify_es256() {
  local raw
  raw=$(printf '%s' "$3" | unb64url | tohex)
  [ ${#raw} -eq 128 ] || return 1
  printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' "${raw:0:64}" "${raw:64:64}" > "$work/sig.cnf"
  openssl asn1parse -genconf "$work/sig.cnf" -out "$work/sig2.der" > /dev/null
  openssl dgst -sha256 -verify "$1" -signature "$work/sig2.der" "$2" > /dev/null 2>&1
}

# The gateway's public key with this kid, from its JWKS, as PEM (P-256: a fixed SPKI prefix, then 04||x||y).
gateway_key_pem() {
  local entry x y
  entry=$(curl -sf "$GATEWAY_URL/.well-known/jwks.json" | tr -d '\n ' | sed 's/},{/}\n{/g' | grep "\"kid\":\"$1\"" || true)
  [ -n "$entry" ] || return 1
  printf '%s' "$entry" | grep -q '"crv":"P-256"' || return 1
  x=$(printf '%s' "$entry" | member x | unb64url | tohex)
  y=$(printf '%s' "$entry" | member y | unb64url | tohex)
  printf '3059301306072a8648ce3d020106082a8648ce3d03010703420004%s%s' "$x" "$y" | fromhex > "$work/gw.der"
  openssl pkey -pubin -inform DER -in "$work/gw.der" -out "$work/gw.pem"
}

call() {
  : "${GATEWAY_URL:?}" "${GATEWAY_ID:?}" "${CLIENT_ID:?}" "${KEY:?}" "${SERVICE:?}" "${BODY?}"
  local kid body_hash now header claims input token status
  kid=$(public_jwk "$KEY" | member kid)
  printf '%s' "$BODY" > "$work/body"
  body_hash=$(openssl dgst -sha256 -binary "$work/body" | b64url)
  now=$(date +%s)
  header=$(printf '{"alg":"ES256","kid":"%s","typ":"JWT"}' "$kid" | b64url)
  # Only the values below are interpolated; ids and codes of the wire interface hold no quotes.
  claims=$(printf '{"iss":"%s","aud":"%s","iat":%d,"exp":%d,"jti":"%s","body_sha256":"%s"%s%s%s}' \
    "$CLIENT_ID" "$GATEWAY_ID" "$now" $((now + 60)) "$(openssl rand -hex 16)" "$body_hash" \
    "${PURPOSE:+,\"purpose\":\"$PURPOSE\"}" "${CASE_ID:+,\"case_id\":\"$CASE_ID\"}" "${USER_ID:+,\"user_id\":\"$USER_ID\"}" | b64url)
  input="$header.$claims"
  token="$input.$(printf '%s' "$input" | sign_es256 "$KEY")"

  status=$(curl -s -o "$work/answer" -D "$work/headers" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
    ${CONSENT:+-H "X-Citizen-Consent: $CONSENT"} \
    --data-binary "@$work/body" "$GATEWAY_URL/services/$SERVICE/v${VERSION:-1}")
  if [ "$status" != 200 ]; then
    cat "$work/answer" >&2; echo >&2
    die 1 "HTTP $status"
  fi

  local signature request_id jws_header jws_sig
  signature=$(sed -n 's/^[Xx]-[Gg]ateway-[Ss]ignature: *\([^[:space:]]*\).*/\1/p' "$work/headers")
  request_id=$(sed -n 's/^[Xx]-[Rr]equest-[Ii]d: *\([^[:space:]]*\).*/\1/p' "$work/headers")
  case "$signature" in *..*) ;; *) die 3 "no detached X-Gateway-Signature" ;; esac
  jws_header=${signature%%..*}
  jws_sig=${signature##*..}
  local decoded
  decoded=$(printf '%s' "$jws_header" | unb64url)
  [ "$(printf '%s' "$decoded" | member alg)" = ES256 ] || die 3 "signature algorithm is not ES256"
  [ "$(printf '%s' "$decoded" | member request_sha256)" = "$body_hash" ] || die 3 "request_sha256 does not match the request sent"
  [ "$(printf '%s' "$decoded" | member request_id)" = "$request_id" ] || die 3 "request_id does not match X-Request-Id"
  gateway_key_pem "$(printf '%s' "$decoded" | member kid)" || die 3 "the signing key is not in the gateway's JWKS"
  # RFC 7515 appendix F: the signing input is the header, a dot and the base64url of the exact body bytes.
  { printf '%s.' "$jws_header"; b64url < "$work/answer"; } > "$work/signing-input"
  verify_es256 "$work/gw.pem" "$work/signing-input" "$jws_sig" || die 3 "X-Gateway-Signature does not verify"
  echo "gateway-call: answer verified (request $request_id)" >&2
  cat "$work/answer"; echo
}

case "${1:-}" in
  jwk) [ -n "${2:-}" ] || die 64 "usage: gateway-call.sh jwk KEY.pem"; public_jwk "$2" ;;
  call) call ;;
  *) die 64 "usage: gateway-call.sh jwk KEY.pem | gateway-call.sh call (settings in the environment, see the head of this file)" ;;
esac
