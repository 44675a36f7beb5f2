// The request component's services, for the daemon and for the verbs that confirm or welcome
// (`pending`, `members add --welcome`). Other kinds' confirmation handlers (held posts) are
// registered beside it as further IConfirmationHandler services.
using Mailman.Instance;
using Mailman.Requests.Commands;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Mailman.Requests;

public static class RequestServices
{
    /// <summary>Registers commands, policies, confirmations and the processor. Needs the instance, the queues, the list store and the notice sender.</summary>
    public static IServiceCollection AddRequests(this IServiceCollection services)
    {
        services.TryAddSingleton<SecretKey>();
        services.AddSingleton<ConfirmationTokens>();
        services.TryAddSingleton<Moderation.ModeratorNotices>();
        services.AddSingleton<SubscriptionModeration>();
        services.AddSingleton<Membership>();
        services.AddSingleton<SubscriptionRequests>();
        services.AddSingleton<IConfirmationHandler, SubscriptionConfirmations>();
        services.AddSingleton<Confirmations>();
        services.AddSingleton<IRequestCommand, JoinCommand>();
        services.AddSingleton<IRequestCommand, LeaveCommand>();
        services.AddSingleton<IRequestCommand, HelpCommand>();
        services.AddSingleton<IRequestCommand, ConfirmCommand>();
        services.AddSingleton<IRequestCommand, EndCommand>();
        services.AddSingleton<RequestProcessor>();
        return services;
    }
}
