// CCurl: libcurl (OpenSSL flavour) for Swift.
// curl_easy_setopt / curl_easy_getinfo / curl_multi_setopt are variadic: typed helpers per argument type.
#ifndef CCURL_SHIM_H
#define CCURL_SHIM_H
#include <curl/curl.h>

/// setopt taking a long (timeouts, flags).
static inline CURLcode CCurl_easy_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
/// setopt taking a pointer (strings are copied by libcurl; lists and user data are not).
static inline CURLcode CCurl_easy_setopt_pointer(CURL *h, CURLoption o, const void *v) { return curl_easy_setopt(h, o, v); }
/// setopt taking a curl_off_t (sizes).
static inline CURLcode CCurl_easy_setopt_off_t(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
/// The write/header callback type, as a plain C function pointer Swift can pass.
typedef size_t (*CCurl_data_callback)(char *ptr, size_t size, size_t nmemb, void *userdata);
/// setopt taking a write or header callback.
static inline CURLcode CCurl_easy_setopt_callback(CURL *h, CURLoption o, CCurl_data_callback cb) { return curl_easy_setopt(h, o, cb); }
/// getinfo returning a long (response code).
static inline CURLcode CCurl_easy_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
/// multi setopt taking a long (connection limits).
static inline CURLMcode CCurl_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }

#endif
