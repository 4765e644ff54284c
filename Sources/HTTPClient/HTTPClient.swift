// HTTPClient: outbound HTTP through libcurl's multi interface on its own thread. The only importer of CCurl.
internal import CCurl
