// AudioCodecs: the Opus codec and the speexdsp resampler (Ogg/Opus and WAV join with the rest of the audio
// issue). The only importer of COpus and CSpeexDSP. Owns every codec handle: created in init, freed in deinit,
// no C type escapes. Whoever owns a stream's codecs runs them on one thread; nothing here locks or allocates
// per frame.

/// A codec library refused something. `code` is the library's own (Opus's `OPUS_*` or speexdsp's `RESAMPLER_ERR_*`).
public struct AudioCodecError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which library.
    public enum Library: String, Sendable { case opus, speexdsp }
    /// Which library answered.
    public var library: Library
    /// Its error code.
    public var code: Int32
    /// Its message, plus our context.
    public var message: String

    public var description: String { "\(library.rawValue) error \(code): \(message)" }
}
