<?php
// Token: POST {ATMOON_BASE_URL}/api/uat/merchant/getToken
// The API document's "get a token" sample, pointed at an environment variable for the base URL
// (`payrun sandbox` prints its address as `listening on ADDR`), with the document's bugs fixed.
// Every fix is marked FIX and says what the document had.
//
// Usage: ATMOON_BASE_URL=http://127.0.0.1:8080 php token.php
// Prints the answer's body on stdout and "HTTP <code>" on stderr. The document's answer:
//   {"status": true, "data": {"token": "bc783ce0..."}, "message": "Token generated sucessfully.!"}

// FIX: the document's URL is hard-coded (https://AtMoonDPS.in/...): the base URL comes from the
// environment, so the same file runs against the sandbox and, later, the real API.
$base = getenv('ATMOON_BASE_URL');
if (!$base) {
    fwrite(STDERR, "token.php: set ATMOON_BASE_URL, e.g. http://127.0.0.1:8080 (payrun sandbox)\n");
    exit(2);
}
$url = rtrim($base, '/') . '/api/uat/merchant/getToken';

// FIX: the document writes the credentials into the sample as placeholders only. They come from
// the same variables payrun reads; the defaults are the document's public example credentials,
// which the sandbox accepts. (The document also calls 172 the "Client UserID" in one copy and
// 61662 the "Client ID" in the other: 61662 is the client id, 172 the user id.)
$accessKey   = getenv('ATMOON_ACCESS_KEY') ?: '51a4bd18-5bc1-4eaa-97b0-c09323398883';
$merchantKey = getenv('ATMOON_MERCHANT_KEY') ?: '41d9eda4b67538fc8ad27e564ddde1bb7b20ad08';
$clientId    = getenv('ATMOON_CLIENT_ID') ?: '61662';
$apiPassword = getenv('ATMOON_API_PASSWORD') ?: 'a90db387a3e3b8a22d923966326327c17e9a6ed6';

$headers = [
    // Kept as the document sends it, on purpose: this malformed line (a space before the colon,
    // `_` for `-`, and the body is a form, not JSON) is what SPEC 7 says the sandbox must ignore
    // rather than answer with an empty 400, and this sample shows that it does. A real
    // integration should drop the line.
    "content_type : application/json",
    // FIX: the document writes "Authorization : access_key" four times: a space before the colon
    // (so a server drops the line) and the credential's name where its value belongs. One
    // Authorization header per credential, named, with its value:
    "Authorization: access_key " . $accessKey,
    "Authorization: merchant_key " . $merchantKey,
    "Authorization: client_id " . $clientId,
    "Authorization: api_password " . $apiPassword,
];

// FIX: the document posts http_build_query($parameters) without ever setting $parameters (a
// TypeError in PHP 8). Its table lists the four credentials as the call's parameters: those.
$parameters = [
    'access_key'   => $accessKey,
    'merchant_key' => $merchantKey,
    'client_id'    => $clientId,
    'api_password' => $apiPassword,
];

$ch = curl_init();
curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
// FIX: the document turns TLS host verification off (CURLOPT_SSL_VERIFYHOST false). Not here:
// curl's defaults verify the certificate and the host name. Against the sandbox it changes
// nothing (plain http on loopback, no TLS at all); against the real API it must stay on.
curl_setopt($ch, CURLOPT_URL, $url);
curl_setopt($ch, CURLOPT_POSTFIELDS, http_build_query($parameters));
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
$response = curl_exec($ch);
// FIX: the document neither checks curl_exec's result nor shows the answer.
if ($response === false) {
    fwrite(STDERR, "token.php: no answer: " . curl_error($ch) . "\n");
    exit(1);
}
fwrite(STDERR, "HTTP " . curl_getinfo($ch, CURLINFO_RESPONSE_CODE) . "\n");
curl_close($ch);
echo $response, "\n";
