/// A one-shot wake-up for a loop that also ends after a timeout; a signal while nobody waits makes the
/// next wait return at once.
public actor WakeSignal {
    private var pending = false
    private var waiter: CheckedContinuation<Void, Never>?

    public init() {}

    public func signal() {
        if let w = waiter {
            waiter = nil
            w.resume()
        } else {
            pending = true
        }
    }

    public func wait(upTo delay: Duration) async {
        if pending || Task.isCancelled {
            pending = false
            return
        }
        let timer = Task {
            // A cancelled timer must not signal: that would cut the next wait short.
            guard (try? await Task.sleep(for: delay)) != nil else { return }
            self.signal()
        }
        // Cancellation (shutdown) ends the wait: the signal runs on the actor once the waiter is stored.
        await withTaskCancellationHandler {
            await withCheckedContinuation { waiter = $0 }
        } onCancel: {
            Task { await self.signal() }
        }
        pending = false
        timer.cancel()
    }
}
