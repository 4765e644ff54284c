/// Patchbay's version, reported by `patchbay version`, the `User-Agent` of outbound requests and `/healthz`.
public enum PatchbayVersion {
    /// Semantic version of this build.
    public static let current = "0.1.0"
}
