console.log("listening")
