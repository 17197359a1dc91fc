// The simulator's own task executor: dedicated threads that run the listener, the request
// handlers and WebSockets (the capture loop stays on the default executor). The simulator usually lives inside a test process
// (or kvmlua) whose code may block Swift's cooperative pool (two threads on a two-core
// machine); a device that stops answering because its host process is busy would make
// timing tests fail for reasons that have nothing to do with the device.

import Foundation

final class SimulatorExecutor: TaskExecutor, @unchecked Sendable {
    // `jobs` is only touched with `condition` locked.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var head = 0

    static let shared = SimulatorExecutor(threads: 4)

    private init(threads: Int) {
        for index in 0..<threads {
            let thread = Thread { [unowned self] in self.run() }
            thread.name = "nanokvm-sim-\(index)"
            thread.start()
        }
    }

    func enqueue(_ job: UnownedJob) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while head == jobs.count { condition.wait() }
            let job = jobs[head]
            head += 1
            if head > 1024, head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
