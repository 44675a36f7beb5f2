// The code-page charsets (windows-1252, iso-8859-2, koi8-r ...) that .NET leaves out by default:
// without them a part in one was read as UTF-8 (review 134: a windows-1252 no-break space made
// the moderator password "wrong", and the post approved went out with it). Registered when the
// assembly loads, for the daemon, the verbs and the tests alike.
using System.Runtime.CompilerServices;
using System.Text;

namespace Mailman.Instance;

internal static class CodePages
{
    [ModuleInitializer]
    internal static void Register() => Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
}
