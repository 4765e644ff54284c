import AudioCodecs
import HTTPClient
import Transport

/// Versions of the C libraries linked into this build, each reported by its wrapper module.
public enum LibraryVersions {
    /// (library, version) pairs for `patchbay version` and the start-up log.
    public static func all() -> [(String, String)] {
        [("libwebsockets", Server.libraryVersion), ("libcurl", HTTPClient.libraryVersion), ("openssl", Server.tlsLibraryVersion),
         ("libopus", OpusDecoder.libraryVersion)]
    }
}
