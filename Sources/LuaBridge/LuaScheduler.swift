import CLua
import CLuaRuntime
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Monotonic seconds (CLOCK_MONOTONIC), the clock of `kvm.now` and every deadline.
public func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Pushes an operation's results on the given thread; returns how many.
public typealias LuaPusher = (OpaquePointer) -> Int32

/// Something a Swift function can wait for without blocking other tasks.
public struct LuaAwaitable {
    let start: (LuaOperation) -> Void
    /// Cleanup (releasing keys, closing): runs even in a task that was cancelled, where every
    /// other wait fails with `cancelled` at once.
    public var isCleanup = false

    /// The same operation, marked as cleanup.
    public var asCleanup: LuaAwaitable {
        var copy = self
        copy.isCleanup = true
        return copy
    }

    /// `start` runs on the Lua thread; it must eventually complete the operation (on the
    /// Lua thread with `succeed`/`fail`, or from any thread through `operation.poster`).
    public init(start: @escaping (LuaOperation) -> Void) { self.start = start }

    /// Completes after `seconds` (a scheduler timer; no thread).
    public static func sleep(_ seconds: Double) -> LuaAwaitable {
        LuaAwaitable { operation in
            let scheduler = operation.scheduler
            let timer = scheduler.schedule(after: seconds) { [unowned operation] in operation.succeed() }
            operation.onCancel = { scheduler.cancelTimer(timer) }
        }
    }

    /// Runs `work` as a Swift `Task` and pushes its value with `push` on the Lua thread.
    /// Cancelling the operation cancels the Task.
    public static func async<Value: Sendable>(
        _ work: @escaping @Sendable () async throws -> Value,
        push: @escaping (Value, LuaStack) -> Int32
    ) -> LuaAwaitable {
        LuaAwaitable { operation in
            let poster = operation.poster
            operation.convertPosted = { posted in
                guard let value = posted as? Value else { throw LuaRuntimeError("internal: unexpected result type") }
                return { L in push(value, LuaStack(L)) }
            }
            let task = Task {
                do {
                    let value = try await work()
                    poster.post(.success(value))
                } catch {
                    poster.post(.failure(error))
                }
            }
            operation.onCancel = { task.cancel() }
            operation.scheduler.externalOperationStarted(operation)
        }
    }

    /// Runs `work` as a Swift `Task`; its values become the results.
    public static func async(_ work: @escaping @Sendable () async throws -> [LuaData]) -> LuaAwaitable {
        async(work) { values, stack in
            _ = stack.ensure(Int32(clamping: values.count) + 2)
            for value in values { stack.push(value) }
            return Int32(clamping: values.count)
        }
    }
}

/// How an operation ended.
enum LuaOutcome {
    case values(LuaPusher)
    case failure(any Error)
}

/// One pending wait. Lua-thread only, except `poster`.
public final class LuaOperation {
    public let id: Int
    public unowned let scheduler: LuaScheduler
    enum Waiter {
        case task(LuaTask)
        case blocking
    }
    let waiter: Waiter
    var outcome: LuaOutcome?
    /// Called (on the Lua thread) when the operation is cancelled before it completed.
    public var onCancel: (() -> Void)?
    /// Turns a value posted from another thread into a pusher.
    var convertPosted: ((any Sendable) throws -> LuaPusher)?
    var isExternal = false

    init(id: Int, scheduler: LuaScheduler, waiter: Waiter) {
        self.id = id
        self.scheduler = scheduler
        self.waiter = waiter
    }

    public var isCompleted: Bool { outcome != nil }

    /// Completes with the values `push` pushes (Lua thread).
    public func succeed(_ push: @escaping LuaPusher = { _ in 0 }) { scheduler.finish(self, .values(push)) }

    /// Completes with an error (Lua thread).
    public func fail(_ error: any Error) { scheduler.finish(self, .failure(error)) }

    /// Cancels: runs `onCancel`, then fails with `error`.
    func cancel(_ error: any Error) {
        guard outcome == nil else { return }
        let handler = onCancel
        onCancel = nil
        handler?()
        fail(error)
    }

    /// Declares that something outside the scheduler (another thread, a timer) will complete
    /// this operation, so the loop keeps waiting for it instead of reporting a deadlock.
    public func markExternal() { scheduler.externalOperationStarted(self) }

    /// A handle other threads use to complete this operation.
    public var poster: LuaOperationPoster { LuaOperationPoster(id: id, inbox: scheduler.inbox) }
}

/// Completes an operation from any thread: the result is queued and the Lua thread woken.
public struct LuaOperationPoster: Sendable {
    let id: Int
    let inbox: LuaSchedulerInbox
    public func post(_ result: Result<any Sendable, any Error>) { inbox.post(id: id, result: result) }
}

/// The queue between other threads and the Lua thread, with the file descriptor that
/// wakes the Lua thread's `poll`.
final class LuaSchedulerInbox: Sendable {
    let readFD: Int32
    let writeFD: Int32
    private let pending = Mutex<[(id: Int, result: Result<any Sendable, any Error>)]>([])

    init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
        }
        readFD = fds[0]
        writeFD = fds[1]
    }

    func post(id: Int, result: Result<any Sendable, any Error>) {
        pending.withLock { $0.append((id: id, result: result)) }
        wake()
    }

    func wake() {
        var byte: UInt8 = 1
        _ = write(writeFD, &byte, 1)
    }

    func drain() -> [(id: Int, result: Result<any Sendable, any Error>)] {
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(readFD, &buffer, buffer.count) > 0 {}
        return pending.withLock { items in
            let taken = items
            items.removeAll()
            return taken
        }
    }
}

/// A coroutine run by the scheduler (`kvm.spawn`). Lua-thread only.
public final class LuaTask {
    public let id: Int
    let thread: OpaquePointer
    let threadRef: LuaRef
    public enum State: Equatable {
        case created
        case ready
        case suspended
        case running
        case done
        case failed
    }
    public internal(set) var state: State = .created
    var argumentCount: Int32 = 0
    var hasStarted = false
    var pendingOperation: LuaOperation?
    var blockingOperations: [LuaOperation] = []
    public internal(set) var cancelRequested = false
    /// Called once when the task ends, in the order they were added.
    var finishHandlers: [(id: Int, handler: (LuaTask) -> Void)] = []
    var resultCount: Int32 = 0
    public internal(set) var error: LuaRaisedValue?
    /// Whether the outcome was given to someone (`wait`), so a failure need not be reported.
    public var observed = false
    public var isFinished: Bool { state == .done || state == .failed }
    /// Whether it ended because it was cancelled.
    public internal(set) var wasCancelled = false

    init(id: Int, thread: OpaquePointer, threadRef: LuaRef) {
        self.id = id
        self.thread = thread
        self.threadRef = threadRef
    }

    private var nextHandlerID = 0

    /// Adds a handler called when the task ends; returns an id for `removeFinishHandler`.
    @discardableResult
    public func onFinish(_ handler: @escaping (LuaTask) -> Void) -> Int {
        nextHandlerID += 1
        finishHandlers.append((id: nextHandlerID, handler: handler))
        return nextHandlerID
    }

    public func removeFinishHandler(_ id: Int) { finishHandlers.removeAll { $0.id == id } }

    public var statusName: String {
        switch state {
        case .created, .ready: return "ready"
        case .suspended: return "waiting"
        case .running: return "running"
        case .done: return "done"
        case .failed: return wasCancelled ? "cancelled" : "failed"
        }
    }
}

/// What the loop also watches while it waits (the REPL's stdin).
public struct LuaIdleInput {
    public let fd: Int32
    public let onReadable: () -> Void
    /// Called before and after tasks run while the prompt is shown (to redraw it).
    public let beforeTasks: () -> Void
    public let afterTasks: () -> Void
    public init(fd: Int32, onReadable: @escaping () -> Void, beforeTasks: @escaping () -> Void = {}, afterTasks: @escaping () -> Void = {}) {
        self.fd = fd
        self.onReadable = onReadable
        self.beforeTasks = beforeTasks
        self.afterTasks = afterTasks
    }
}

/// The coroutine scheduler: timers, tasks, operations and the loop. See DEVELOPERS.md.
public final class LuaScheduler {
    unowned let runtime: LuaRuntime
    let inbox = LuaSchedulerInbox()
    private var operations: [Int: LuaOperation] = [:]
    private var nextID = 1
    private var nextTaskID = 0
    private var timers = TimerHeap()
    private var timerCallbacks: [Int: () -> Void] = [:]
    private var readyQueue: [LuaTask] = []
    private var readyHead = 0
    private var tasksByThread: [OpaquePointer: LuaTask] = [:]
    /// Every task not finished yet, by id.
    public private(set) var liveTasks: [Int: LuaTask] = [:]
    /// Tasks that failed and whose failure nobody has seen yet.
    public private(set) var unobservedFailures: [LuaTask] = []
    private var runningThreads: [OpaquePointer] = []
    private var blockingStack: [LuaOperation] = []
    private var externalCount = 0
    /// Called when a task fails while nobody waits for it (the REPL prints it at once).
    public var onUnobservedFailure: ((LuaTask) -> Void)?

    /// The file descriptor SIGINT writes to (see kvm_sigint_arm).
    public var wakeFD: Int32 { inbox.writeFD }

    init(runtime: LuaRuntime) {
        self.runtime = runtime
    }

    func shutdown() {
        for operation in operations.values { operation.onCancel?() }
        operations.removeAll()
    }

    // MARK: Operations

    func makeOperation(waiter: LuaOperation.Waiter) -> LuaOperation {
        let operation = LuaOperation(id: nextID, scheduler: self, waiter: waiter)
        nextID += 1
        operations[operation.id] = operation
        return operation
    }

    func externalOperationStarted(_ operation: LuaOperation) {
        guard !operation.isExternal, operation.outcome == nil else { return }
        operation.isExternal = true
        externalCount += 1
    }

    func finish(_ operation: LuaOperation, _ outcome: LuaOutcome) {
        guard operation.outcome == nil else { return }
        operation.outcome = outcome
        operation.onCancel = nil
        operations[operation.id] = nil
        if operation.isExternal { externalCount -= 1 }
        if case let .task(task) = operation.waiter, task.pendingOperation === operation, task.state == .suspended {
            task.state = .ready
            readyQueue.append(task)
        }
    }

    /// Runs `callback` on the Lua thread after `seconds`; returns an id for `cancelTimer`.
    @discardableResult
    public func schedule(after seconds: Double, _ callback: @escaping () -> Void) -> Int {
        let id = nextID
        nextID += 1
        timerCallbacks[id] = callback
        timers.insert(deadline: monotonicSeconds() + max(0, seconds), operationID: id)
        return id
    }

    public func cancelTimer(_ id: Int) { timerCallbacks[id] = nil }

    /// Called by the dispatcher for `.await`: yields inside a task, blocks elsewhere.
    func await(_ awaitable: LuaAwaitable, on L: OpaquePointer, call: LuaCall) throws -> Int32 {
        if let task = currentTask, task.cancelRequested, !awaitable.isCleanup {
            throw LuaCancelledError()
        }
        if let task = tasksByThread[L], kvm_lua_isyieldable(L) != 0, task.state == .running {
            let operation = makeOperation(waiter: .task(task))
            task.pendingOperation = operation
            awaitable.start(operation)
            return KVM_CALL_YIELD
        }
        let operation = makeOperation(waiter: .blocking)
        let owner = currentTask
        owner?.blockingOperations.append(operation)
        blockingStack.append(operation)
        defer {
            blockingStack.removeAll { $0 === operation }
            owner?.blockingOperations.removeAll { $0 === operation }
        }
        awaitable.start(operation)
        run(until: { operation.outcome != nil })
        switch operation.outcome {
        case let .values(push)?:
            return push(L)
        case let .failure(error)?:
            throw error
        case nil:
            throw LuaRuntimeError("internal: operation ended without a result")
        }
    }

    /// Runs `awaitable` to completion from Swift code on the Lua thread (blocking fallback).
    public func block(on awaitable: LuaAwaitable) throws -> LuaPusher {
        let operation = makeOperation(waiter: .blocking)
        blockingStack.append(operation)
        defer { blockingStack.removeAll { $0 === operation } }
        awaitable.start(operation)
        run(until: { operation.outcome != nil })
        switch operation.outcome {
        case let .values(push)?: return push
        case let .failure(error)?: throw error
        case nil: throw LuaRuntimeError("internal: operation ended without a result")
        }
    }

    /// The task whose code is running now (innermost), if any.
    public var currentTask: LuaTask? {
        for thread in runningThreads.reversed() {
            if let task = tasksByThread[thread] { return task }
        }
        return nil
    }

    // MARK: Tasks

    /// Creates a task that will call the function at `functionIndex` of `L` with the
    /// `argumentCount` values above it. It starts on the next turn of the loop.
    public func spawn(functionAt functionIndex: Int32, argumentCount: Int32, on L: OpaquePointer) -> LuaTask? {
        let function = lua_absindex(L, functionIndex)
        guard lua_checkstack(L, argumentCount + 4) != 0, let thread = lua_newthread(L) else { return nil }
        let threadRef = LuaRef(popping: L)
        guard lua_checkstack(thread, argumentCount + 4) != 0 else { return nil }
        for i in 0...argumentCount { lua_pushvalue(L, function + i) }
        lua_xmove(L, thread, argumentCount + 1)
        nextTaskID += 1
        let task = LuaTask(id: nextTaskID, thread: thread, threadRef: threadRef)
        task.argumentCount = argumentCount
        task.state = .ready
        tasksByThread[thread] = task
        liveTasks[task.id] = task
        readyQueue.append(task)
        return task
    }

    /// An operation that completes when `task` finishes, with its results or its error.
    public func wait(for task: LuaTask) -> LuaAwaitable {
        LuaAwaitable { operation in
            if task.isFinished {
                operation.succeedOrFail(with: task)
            } else {
                // Waits that would never end (tasks waiting on each other) are found by the
                // loop's deadlock check.
                let handler = task.onFinish { [unowned operation] finished in operation.succeedOrFail(with: finished) }
                operation.onCancel = { task.removeFinishHandler(handler) }
            }
        }
    }

    /// Requests cancellation: the task's pending wait fails with `cancelled`.
    public func cancel(_ task: LuaTask, message: String = "cancelled") {
        guard !task.isFinished else { return }
        task.cancelRequested = true
        let error = LuaCancelledError(message)
        switch task.state {
        case .created, .ready:
            if !task.hasStarted {
                end(task, failure: LuaRaisedValue(ref: pushedRef(error), traceback: nil), cancelled: true)
            } else if let operation = task.pendingOperation {
                // Completed but not resumed yet: resume it with the cancellation instead.
                operation.outcome = .failure(error)
            } else {
                // Between two plain coroutine.yield() turns.
                _ = lua_resetthread(task.thread)
                end(task, failure: LuaRaisedValue(ref: pushedRef(error), traceback: nil), cancelled: true)
            }
        case .suspended:
            if let operation = task.pendingOperation {
                operation.cancel(error)
            } else {
                // Suspended by a plain coroutine.yield(): it cannot be resumed with an error.
                _ = lua_resetthread(task.thread)
                end(task, failure: LuaRaisedValue(ref: pushedRef(error), traceback: nil), cancelled: true)
            }
        case .running:
            for operation in task.blockingOperations { operation.cancel(error) }
        case .done, .failed:
            break
        }
    }

    private func pushedRef(_ error: any Error) -> LuaRef {
        runtime.pushError(error, on: runtime.L)
        return LuaRef(popping: runtime.L)
    }

    /// Cancels every task and every blocking wait (Ctrl-C).
    public func cancelEverything(message: String) {
        kvm_sigint_clear_hooks()
        for task in liveTasks.values.sorted(by: { $0.id < $1.id }) { cancel(task, message: message) }
        for operation in blockingStack { operation.cancel(LuaCancelledError(message)) }
    }

    private func resume(_ task: LuaTask) {
        guard task.state == .ready else { return }
        let co = task.thread
        var argumentCount: Int32 = 0
        if !task.hasStarted {
            task.hasStarted = true
            argumentCount = task.argumentCount
        } else if let operation = task.pendingOperation {
            task.pendingOperation = nil
            guard lua_checkstack(co, 8) != 0 else { return }
            switch operation.outcome {
            case let .values(push)?:
                lua_pushboolean(co, 1)
                argumentCount = 1 + push(co)
            case let .failure(error)?:
                lua_pushboolean(co, 0)
                runtime.pushError(error, on: co)
                argumentCount = 2
            case nil:
                argumentCount = 0
            }
        }
        task.state = .running
        let from = runningThreads.last ?? runtime.L
        runningThreads.append(co)
        let previous = kvm_sigint_set_running(co)
        var resultCount: Int32 = 0
        let status = lua_resume(co, from, argumentCount, &resultCount)
        _ = kvm_sigint_set_running(previous)
        runningThreads.removeLast()

        switch status {
        case LUA_YIELD:
            kvm_lua_pop(co, resultCount)
            if let operation = task.pendingOperation {
                task.state = .suspended
                if operation.outcome != nil {  // completed during start()
                    task.state = .ready
                    readyQueue.append(task)
                }
            } else {
                // A plain coroutine.yield(): let the others run, then continue.
                task.state = .ready
                readyQueue.append(task)
            }
        case LUA_OK:
            task.resultCount = resultCount
            end(task, failure: nil, cancelled: false)
        default:
            // The coroutine's stack is still there after the error: keep its traceback.
            let main = runtime.L
            kvm_traceback(main, co, nil, 0)
            let traceback = LuaStack(main).string(at: -1)
            kvm_lua_pop(main, 1)
            let failure = LuaRaisedValue(ref: LuaRef(popping: co), traceback: traceback)
            end(task, failure: failure, cancelled: task.cancelRequested && isCancellation(failure))
        }
    }

    private func isCancellation(_ failure: LuaRaisedValue) -> Bool {
        // The kvm module marks cancellation errors with kind = "cancelled".
        let L = runtime.L
        failure.ref.push(on: L)
        defer { kvm_lua_pop(L, 1) }
        guard lua_type(L, -1) == LUA_TTABLE else { return false }
        let kind = LuaStack(L).rawField(-1, "kind") == .string ? LuaStack(L).string(at: -1) : nil
        kvm_lua_pop(L, 1)
        return kind == "cancelled"
    }

    private func end(_ task: LuaTask, failure: LuaRaisedValue?, cancelled: Bool) {
        task.state = failure == nil ? .done : .failed
        task.error = failure
        task.wasCancelled = cancelled
        task.pendingOperation = nil
        liveTasks[task.id] = nil
        tasksByThread[task.thread] = nil
        let handlers = task.finishHandlers
        task.finishHandlers.removeAll()
        for entry in handlers { entry.handler(task) }
        if failure != nil, !task.observed, !cancelled {
            unobservedFailures.append(task)
            onUnobservedFailure?(task)
        }
    }

    /// Removes `task` from the list of failures nobody saw.
    public func markObserved(_ task: LuaTask) {
        task.observed = true
        unobservedFailures.removeAll { $0 === task }
    }

    public func takeUnobservedFailures() -> [LuaTask] {
        let failures = unobservedFailures
        unobservedFailures.removeAll()
        return failures
    }

    // MARK: The loop

    /// What to do when SIGINT arrives while the loop waits; default: cancel everything.
    public var interruptHandler: (() -> Void)?

    /// Runs tasks, timers and completions until `done()` is true.
    public func run(until done: () -> Bool, idle: LuaIdleInput? = nil) {
        while true {
            processEvents()
            if done() { return }
            if readyHead < readyQueue.count {
                idle?.beforeTasks()
                while readyHead < readyQueue.count {
                    let task = readyQueue[readyHead]
                    readyHead += 1
                    resume(task)
                    processEvents()
                    if done() { break }
                }
                if readyHead >= readyQueue.count {
                    readyQueue.removeAll(keepingCapacity: true)
                    readyHead = 0
                }
                idle?.afterTasks()
                continue
            }
            if idle == nil, externalCount == 0, timerCallbacks.isEmpty {
                // Nothing can ever complete what we wait for: tasks waiting on each other.
                breakDeadlock()
                continue
            }
            waitForEvents(idleFD: idle?.fd, onReadable: idle?.onReadable)
        }
    }

    /// Whether anything is left to run (tasks, timers, outstanding operations).
    public var hasPendingWork: Bool { !liveTasks.isEmpty || externalCount > 0 || !timerCallbacks.isEmpty }

    private func breakDeadlock() {
        let message = "deadlock: every task is waiting for another task"
        if let innermost = blockingStack.last {
            innermost.fail(LuaRuntimeError(message))
        } else {
            for task in liveTasks.values.sorted(by: { $0.id < $1.id }) { cancel(task, message: message) }
        }
    }

    private func processEvents() {
        for (id, result) in inbox.drain() {
            guard let operation = operations[id] else { continue }  // cancelled meanwhile
            switch result {
            case let .success(value):
                do {
                    guard let convert = operation.convertPosted else {
                        operation.succeed()
                        continue
                    }
                    operation.succeed(try convert(value))
                } catch {
                    operation.fail(error)
                }
            case let .failure(error):
                operation.fail(error)
            }
        }
        if kvm_sigint_take() != 0 {
            if let handler = interruptHandler { handler() } else { cancelEverything(message: "interrupted") }
        }
        let now = monotonicSeconds()
        while let timer = timers.first, timer.deadline <= now {
            timers.removeFirst()
            if let callback = timerCallbacks.removeValue(forKey: timer.operationID) { callback() }
        }
    }

    private func waitForEvents(idleFD: Int32?, onReadable: (() -> Void)?) {
        var timeout: Int32 = -1
        while let next = timers.first, timerCallbacks[next.operationID] == nil { timers.removeFirst() }
        if let next = timers.first {
            let seconds = next.deadline - monotonicSeconds()
            timeout = seconds <= 0 ? 0 : Int32(min((seconds * 1000).rounded(.up), 86_400_000))
        }
        var fds = [pollfd(fd: inbox.readFD, events: Int16(POLLIN), revents: 0)]
        if let idleFD { fds.append(pollfd(fd: idleFD, events: Int16(POLLIN), revents: 0)) }
        let ready = poll(&fds, nfds_t(fds.count), timeout)
        if ready > 0, fds.count > 1, fds[1].revents != 0 {
            onReadable?()
        }
    }
}

extension LuaOperation {
    /// Completes with the outcome of a finished task.
    public func succeedOrFail(with task: LuaTask) {
        scheduler.markObserved(task)
        if let error = task.error {
            fail(error)
            return
        }
        let co = task.thread
        let count = task.resultCount
        succeed { L in
            guard lua_checkstack(L, count + 2) != 0, lua_checkstack(co, count + 2) != 0 else { return 0 }
            if count > 0 {
                for i in 1...count { lua_pushvalue(co, i) }
                lua_xmove(co, L, count)
            }
            return count
        }
    }
}

/// A binary min-heap of timer deadlines.
struct TimerHeap {
    struct Entry {
        let deadline: Double
        let sequence: Int
        let operationID: Int
    }
    private var entries: [Entry] = []
    private var sequence = 0

    var first: Entry? { entries.first }

    private func less(_ a: Entry, _ b: Entry) -> Bool {
        a.deadline < b.deadline || (a.deadline == b.deadline && a.sequence < b.sequence)
    }

    mutating func insert(deadline: Double, operationID: Int) {
        sequence += 1
        entries.append(Entry(deadline: deadline, sequence: sequence, operationID: operationID))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(entries[child], entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func removeFirst() {
        guard !entries.isEmpty else { return }
        entries.swapAt(0, entries.count - 1)
        entries.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < entries.count, less(entries[left], entries[smallest]) { smallest = left }
            if right < entries.count, less(entries[right], entries[smallest]) { smallest = right }
            if smallest == parent { break }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
